#pragma once

// The store-independent half of a reservation, shared by every LimitCounters: which
// counters a request charges and by how much (PlanReservation), and the decision once the
// counters' current values are known (Decide). Pure functions; thread-safe.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/limits/limit_counters.h"
#include "gateway/limits/limit_policy.h"

namespace triplane::gateway {

// One counter a reservation checks and charges.
struct CounterCharge {
  std::string counter;  // CounterName(kind, window, scope)
  size_t subject = 0;   // index into the request's subjects
  LimitKind kind = LimitKind::kRequestsPerMinute;
  int64_t limit = 0;  // > 0
  int64_t delta = 0;  // 1 for requests, the reserved tokens otherwise
  absl::Time window_end;
  absl::Duration ttl;  // CounterTtl(window, now)
};

struct ReservationPlan {
  std::vector<CounterCharge> charges;  // only limited kinds (limit > 0), subject order
  // Set when the request alone exceeds a limit: the store must not be consulted.
  std::optional<LimitDecision> refusal;
};

// Lists the counters that `tokens` at `now` would charge. InvalidArgument for invalid
// subjects (ValidateSubjects) or negative tokens.
[[nodiscard]] absl::StatusOr<ReservationPlan> PlanReservation(
    std::span<const LimitSubject> subjects, int64_t tokens, absl::Time now);

// The decision for `charges` given each counter's value before this request
// (`current[i]` for `charges[i]`): allowed when every current + delta <= limit.
// REQUIRES: current.size() == charges.size().
LimitDecision Decide(std::span<const LimitSubject> subjects, std::span<const CounterCharge> charges,
                     std::span<const int64_t> current, absl::Time now);

// The reservation that settles an allowed plan's token counters.
Reservation ReservationFor(std::span<const CounterCharge> charges, int64_t tokens);

}  // namespace triplane::gateway
