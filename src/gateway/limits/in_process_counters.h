#pragma once

// LimitCounters kept in this process's memory: exact and fast, but each gateway process
// counts alone (N gateways allow up to N times each limit). For one gateway, tests, and
// as the model RedisCounters must behave like.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/limits/limit_counters.h"

namespace triplane::gateway {

// Thread-safe: one mutex guards the counters; each call holds it for O(subjects * 4)
// hash map operations, plus, at most once per 10 s of `now`, a sweep that drops the
// counters of windows that ended (so memory is bounded by the live windows).
class InProcessCounters final : public LimitCounters {
 public:
  InProcessCounters() = default;

  [[nodiscard]] absl::StatusOr<LimitDecision> Reserve(std::span<const LimitSubject> subjects,
                                                      int64_t tokens, absl::Time now,
                                                      Reservation* out) override;
  [[nodiscard]] absl::Status Settle(const Reservation& reservation, int64_t actual_tokens) override;
  [[nodiscard]] absl::Status AddUsage(std::string_view scope, int64_t tokens,
                                      absl::Time at) override;
  [[nodiscard]] absl::StatusOr<int64_t> Usage(std::string_view scope, LimitKind kind,
                                              absl::Time at) override;

 private:
  struct Counter {
    int64_t value = 0;
    absl::Time expires;  // the window's end plus slack (CounterTtl)
  };

  // Adds `delta` to `name`, creating it to expire at `expires`.
  void AddLocked(const std::string& name, int64_t delta, absl::Time expires)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops expired counters when `now` is 10 s past the last sweep.
  void MaybePruneLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::unordered_map<std::string, Counter> counters_ ABSL_GUARDED_BY(mu_);
  absl::Time last_prune_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace triplane::gateway
