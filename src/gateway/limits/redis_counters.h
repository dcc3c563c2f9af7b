#pragma once

// LimitCounters in a Redis shared by every gateway, so limits hold across all of them.
// Each Reserve is one Lua script (EVALSHA, EVAL after a server restart) that reads every
// counter of every subject and increments them all only if all stay within their
// limits; Redis runs scripts one at a time, so concurrent gateways can never overshoot.
// Settle is another script: INCRBY of the difference on the counters that still exist,
// floored at 0, keeping their TTL.
//
// Keys: `<key_prefix><CounterName>`, e.g. "triplane:limits:tpm:29554383:key:k1", string
// integers with a TTL of the window's end plus a minute. A single Redis (or a primary
// with replicas) is supported; Redis Cluster is not (a script's keys span hash slots).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/limits/limit_counters.h"
#include "gateway/limits/redis_client.h"

namespace triplane::gateway {

struct RedisCountersOptions {
  std::string url;  // redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]
  FailMode fail_mode = FailMode::kClosed;
  std::string key_prefix = "triplane:limits:";  // lets several deployments share a Redis
  RedisClientOptions client;
};

// Thread-safe (RedisClient's pool; a mutex for the cached script hashes and the warning
// throttle). Each call costs one round trip, two on the first use of a script after a
// (re)start of Redis.
class RedisCounters final : public LimitCounters {
 public:
  // Validates the URL; connects lazily (a Redis that is down now is not an error).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RedisCounters>> Create(
      RedisCountersOptions options);

  // While Redis cannot answer: Unavailable in FailMode::kClosed; in kOpen allowed with
  // `note` set and nothing reserved (the reservation is empty, settling it is a no-op).
  [[nodiscard]] absl::StatusOr<LimitDecision> Reserve(std::span<const LimitSubject> subjects,
                                                      int64_t tokens, absl::Time now,
                                                      Reservation* out) override;
  // Unavailable while Redis cannot answer, whatever the fail mode (the refund is lost;
  // the counters expire with their windows).
  [[nodiscard]] absl::Status Settle(const Reservation& reservation, int64_t actual_tokens) override;
  [[nodiscard]] absl::Status AddUsage(std::string_view scope, int64_t tokens,
                                      absl::Time at) override;
  [[nodiscard]] absl::StatusOr<int64_t> Usage(std::string_view scope, LimitKind kind,
                                              absl::Time at) override;

 private:
  // The Lua scripts (sources in redis_counters.cc).
  enum class Script { kReserve, kSettle, kAddUsage };
  static constexpr size_t kScriptCount = 3;

  RedisCounters(RedisCountersOptions options, std::unique_ptr<RedisClient> client);

  // Runs `script` with KEYS `keys` and ARGV `args` by EVALSHA, loading it first if this
  // process has not yet. Error replies become Unavailable too.
  [[nodiscard]] absl::StatusOr<RedisValue> RunScript(Script script,
                                                     std::span<const std::string> keys,
                                                     std::span<const std::string> args);
  // Logs `status` as a warning unless one was logged in the last 10 s.
  void WarnThrottled(const absl::Status& status);

  const RedisCountersOptions options_;
  const std::unique_ptr<RedisClient> client_;

  absl::Mutex mu_;
  std::string script_shas_[kScriptCount] ABSL_GUARDED_BY(mu_);  // SCRIPT LOAD's; "" unknown
  absl::Time last_warning_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace triplane::gateway
