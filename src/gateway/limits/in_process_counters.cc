#include "gateway/limits/in_process_counters.h"

#include <algorithm>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "gateway/limits/limit_plan.h"
#include "gateway/limits/limit_window.h"

namespace triplane::gateway {

absl::StatusOr<LimitDecision> InProcessCounters::Reserve(std::span<const LimitSubject> subjects,
                                                         int64_t tokens, absl::Time now,
                                                         Reservation* out) {
  *out = Reservation{};
  absl::StatusOr<ReservationPlan> plan = PlanReservation(subjects, tokens, now);
  if (!plan.ok()) return plan.status();
  if (plan->refusal.has_value()) return *std::move(plan->refusal);

  absl::MutexLock lock(&mu_);
  MaybePruneLocked(now);
  std::vector<int64_t> current;
  current.reserve(plan->charges.size());
  for (const CounterCharge& charge : plan->charges) {
    const auto it = counters_.find(charge.counter);
    // An expired counter that the sweep has not dropped yet counts as 0.
    current.push_back(it == counters_.end() || it->second.expires <= now ? 0 : it->second.value);
  }
  LimitDecision decision = Decide(subjects, plan->charges, current, now);
  if (!decision.allowed) return decision;
  for (const CounterCharge& charge : plan->charges) {
    auto [it, inserted] = counters_.try_emplace(charge.counter);
    if (!inserted && it->second.expires <= now) it->second.value = 0;
    it->second.value += charge.delta;
    it->second.expires = now + charge.ttl;
  }
  *out = ReservationFor(plan->charges, tokens);
  return decision;
}

absl::Status InProcessCounters::Settle(const Reservation& reservation, int64_t actual_tokens) {
  if (actual_tokens < 0) {
    return absl::InvalidArgumentError(fmt::format("actual tokens are negative: {}", actual_tokens));
  }
  const int64_t delta = actual_tokens - reservation.tokens;
  if (delta == 0) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  for (const std::string& name : reservation.token_counters) {
    const auto it = counters_.find(name);
    if (it == counters_.end()) continue;  // the window ended and was swept: nothing to fix
    it->second.value = std::max<int64_t>(it->second.value + delta, 0);
  }
  return absl::OkStatus();
}

absl::Status InProcessCounters::AddUsage(std::string_view scope, int64_t tokens, absl::Time at) {
  if (absl::Status s = ValidateScope(scope); !s.ok()) return s;
  if (tokens < 0) {
    return absl::InvalidArgumentError(fmt::format("usage tokens are negative: {}", tokens));
  }
  absl::MutexLock lock(&mu_);
  for (const LimitKind kind : kAllLimitKinds) {
    if (!CountsTokens(kind)) continue;
    const LimitWindow window = WindowOf(kind, at);
    AddLocked(CounterName(kind, window, scope), tokens, at + CounterTtl(window, at));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> InProcessCounters::Usage(std::string_view scope, LimitKind kind,
                                                 absl::Time at) {
  const std::string name = CounterName(kind, WindowOf(kind, at), scope);
  absl::MutexLock lock(&mu_);
  const auto it = counters_.find(name);
  return it == counters_.end() || it->second.expires <= at ? 0 : it->second.value;
}

void InProcessCounters::AddLocked(const std::string& name, int64_t delta, absl::Time expires) {
  auto [it, inserted] = counters_.try_emplace(name);
  it->second.value += delta;
  it->second.expires = std::max(it->second.expires, expires);
}

void InProcessCounters::MaybePruneLocked(absl::Time now) {
  // `now` is the caller's clock and may step back; a sweep at an earlier time drops a
  // subset of what a later one would, so it is safe either way.
  if (now < last_prune_ + absl::Seconds(10) && now >= last_prune_) return;
  last_prune_ = now;
  std::erase_if(counters_, [now](const auto& entry) { return entry.second.expires <= now; });
}

}  // namespace triplane::gateway
