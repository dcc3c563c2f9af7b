#include "gateway/limits/limit_plan.h"

#include <algorithm>
#include <string>

#include "fmt/format.h"
#include "gateway/limits/limit_window.h"

namespace triplane::gateway {
namespace {

std::string Describe(LimitKind kind, const LimitSubject& subject) {
  return fmt::format("{} of {}", LimitKindName(kind), subject.scope);
}

// Whole seconds, rounded up, for messages.
int64_t CeilSeconds(absl::Duration d) {
  return absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1)));
}

// Keeps the tightest quota: least remaining, then smallest limit.
void KeepTightest(std::optional<MinuteQuota>& best, const MinuteQuota& candidate) {
  if (!best.has_value() || candidate.remaining < best->remaining ||
      (candidate.remaining == best->remaining && candidate.limit < best->limit)) {
    best = candidate;
  }
}

}  // namespace

absl::StatusOr<ReservationPlan> PlanReservation(std::span<const LimitSubject> subjects,
                                                int64_t tokens, absl::Time now) {
  if (tokens < 0) {
    return absl::InvalidArgumentError(fmt::format("reserved tokens are negative: {}", tokens));
  }
  if (absl::Status s = ValidateSubjects(subjects); !s.ok()) return s;
  ReservationPlan plan;
  for (size_t i = 0; i < subjects.size(); ++i) {
    const LimitSubject& subject = subjects[i];
    for (const LimitKind kind : kAllLimitKinds) {
      const int64_t limit = LimitOf(subject.policy, kind);
      if (limit == 0) continue;
      const int64_t delta = CountsTokens(kind) ? tokens : 1;
      if (delta > limit && !plan.refusal.has_value()) {
        plan.refusal = LimitDecision{
            .allowed = false,
            .retryable = false,
            .violated = Describe(kind, subject),
            .reason = fmt::format("{} is {} and the request needs {} tokens",
                                  Describe(kind, subject), limit, delta),
        };
      }
      const LimitWindow window = WindowOf(kind, now);
      plan.charges.push_back({.counter = CounterName(kind, window, subject.scope),
                              .subject = i,
                              .kind = kind,
                              .limit = limit,
                              .delta = delta,
                              .window_end = window.end,
                              .ttl = CounterTtl(window, now)});
    }
  }
  return plan;
}

LimitDecision Decide(std::span<const LimitSubject> subjects, std::span<const CounterCharge> charges,
                     std::span<const int64_t> current, absl::Time now) {
  LimitDecision decision;
  for (size_t i = 0; i < charges.size(); ++i) {
    const CounterCharge& charge = charges[i];
    if (current[i] + charge.delta <= charge.limit) continue;
    const absl::Duration wait = charge.window_end - now;
    if (decision.allowed || wait > decision.retry_after) {
      decision.allowed = false;
      decision.retry_after = wait;
      decision.violated = Describe(charge.kind, subjects[charge.subject]);
      decision.reason =
          fmt::format("{} is {}, {} used, the request needs {}; resets in {} s", decision.violated,
                      charge.limit, current[i], charge.delta, CeilSeconds(wait));
    }
  }
  for (size_t i = 0; i < charges.size(); ++i) {
    const CounterCharge& charge = charges[i];
    if (charge.kind != LimitKind::kRequestsPerMinute &&
        charge.kind != LimitKind::kTokensPerMinute) {
      continue;
    }
    const int64_t used = current[i] + (decision.allowed ? charge.delta : 0);
    const MinuteQuota quota{.limit = charge.limit,
                            .remaining = std::max<int64_t>(charge.limit - used, 0),
                            .reset = charge.window_end - now};
    KeepTightest(charge.kind == LimitKind::kRequestsPerMinute ? decision.requests : decision.tokens,
                 quota);
  }
  return decision;
}

Reservation ReservationFor(std::span<const CounterCharge> charges, int64_t tokens) {
  Reservation reservation{.tokens = tokens, .token_counters = {}};
  for (const CounterCharge& charge : charges) {
    if (CountsTokens(charge.kind)) reservation.token_counters.push_back(charge.counter);
  }
  return reservation;
}

}  // namespace triplane::gateway
