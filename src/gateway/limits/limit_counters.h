#pragma once

// The gateway's limit counters: requests/minute and tokens/minute/day/month per API key
// and per team, enforced so that concurrent requests — in one gateway or in many that
// share a Redis — never push a counter over its limit.
//
// Protocol, per request:
//   1. Reserve(subjects, upper_bound_tokens, now, &reservation) before forwarding, with
//      upper_bound_tokens = prompt estimate + max_tokens. All-or-nothing: either every
//      counter of every subject gets +1 request and +tokens, or none changes.
//   2. Settle(reservation, actual_tokens) once the real usage is known (also when the
//      request failed: actual 0), refunding what was reserved but not used.
// Windows are fixed and UTC-aligned (limit_window.h); a reservation keeps the windows it
// was charged to, so settling after a rollover only adjusts the old window's counter.
//
// Implementations: InProcessCounters (one process) and RedisCounters (shared).
// MakeLimitCounters() picks one from a URL.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/limits/limit_policy.h"

namespace triplane::gateway {

// What a shared store does while it cannot be reached.
enum class FailMode {
  kClosed,  // refuse: Reserve returns Unavailable (HTTP 503)
  kOpen,    // allow without counting; a warning is logged at most once per 10 s
};

// The tightest minute limit of one quantity across the request's subjects, for the
// OpenAI-style x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers.
struct MinuteQuota {
  int64_t limit = 0;
  int64_t remaining = 0;  // after this request when allowed, else as it stands
  absl::Duration reset;   // until the minute window ends
};

// The answer to a Reserve.
struct LimitDecision {
  bool allowed = true;
  // When refused: false if the request alone exceeds a limit (its tokens > the limit),
  // so retrying can never succeed; true if waiting for `retry_after` may help.
  bool retryable = true;
  // When refused: which limit, e.g. "tokens_per_minute of key:k1"; empty when allowed.
  std::string violated;
  // When refused: a sentence for the error body, e.g. "tokens_per_minute of key:k1 is
  // 4000 and the request needs 5000 tokens".
  std::string reason;
  // When refused and retryable: until the violated window resets (the longest, if several
  // are violated). Zero otherwise.
  absl::Duration retry_after;
  // The tightest requests_per_minute / tokens_per_minute among the subjects (least
  // remaining); empty when no subject has that limit, the request alone exceeds a limit
  // or limits were not enforced.
  std::optional<MinuteQuota> requests;
  std::optional<MinuteQuota> tokens;
  // Set when the request was allowed without being counted (store down, FailMode::kOpen).
  std::string note;
};

// What Reserve charged, so that Settle can adjust the same counters later. Copyable and
// store-independent (counter names, not connections); an empty one settles to nothing.
struct Reservation {
  int64_t tokens = 0;                       // tokens reserved on each token counter
  std::vector<std::string> token_counters;  // CounterName()s charged with `tokens`
};

// A set of limit counters. Implementations are thread-safe.
class LimitCounters {
 public:
  virtual ~LimitCounters() = default;

  // Checks every limit of every subject at `now` and, only if all hold with this request
  // (+1 request, +`tokens`), charges them all atomically and fills `*out`. A refused or
  // failed request charges nothing and leaves `*out` empty.
  // `tokens` >= 0; subjects must pass ValidateSubjects (else InvalidArgument). A subject
  // whose tokens limit is below `tokens` refuses with retryable = false without touching
  // the store. Unavailable when the store cannot be reached and the mode is kClosed.
  // REQUIRES: out != nullptr.
  [[nodiscard]] virtual absl::StatusOr<LimitDecision> Reserve(
      std::span<const LimitSubject> subjects, int64_t tokens, absl::Time now, Reservation* out) = 0;

  // Replaces the reserved tokens with `actual_tokens` on the reservation's counters:
  // refunds the difference (a counter never goes below 0) or, when the estimate was
  // short, charges the excess, which may take a counter past its limit until the window
  // resets. Counters that have expired are left alone. Call once per reservation.
  // Unavailable when the store cannot be reached.
  [[nodiscard]] virtual absl::Status Settle(const Reservation& reservation,
                                            int64_t actual_tokens) = 0;

  // Adds `tokens` used at time `at` to `scope`'s token counters (minute, day, month
  // windows containing `at`), unchecked: seeds the budgets counted before a restart.
  [[nodiscard]] virtual absl::Status AddUsage(std::string_view scope, int64_t tokens,
                                              absl::Time at) = 0;

  // The current value of `scope`'s `kind` counter in the window containing `at` (0 when
  // never charged or expired). For diagnostics and tests.
  [[nodiscard]] virtual absl::StatusOr<int64_t> Usage(std::string_view scope, LimitKind kind,
                                                      absl::Time at) = 0;
};

// Counters from a URL: "" or "memory" for InProcessCounters, "redis://[[USER]:PASSWORD@]
// HOST[:PORT][/DB]" for RedisCounters (which connects lazily, so a Redis that is down
// now does not fail this). InvalidArgument for anything else.
[[nodiscard]] absl::StatusOr<std::unique_ptr<LimitCounters>> MakeLimitCounters(std::string_view url,
                                                                               FailMode fail_mode);

}  // namespace triplane::gateway
