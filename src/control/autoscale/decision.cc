#include "control/autoscale/decision.h"

#include <algorithm>
#include <cmath>

#include "fmt/format.h"

namespace triplane::control {
namespace {

struct WindowAverage {
  int count = 0;
  double mean = 0;
};

// The mean of the samples taken after `since`.
WindowAverage Average(const std::deque<DemandSample>& samples, absl::Time since) {
  WindowAverage average;
  double sum = 0;
  for (const DemandSample& sample : samples) {
    if (sample.time <= since) continue;
    sum += sample.value;
    ++average.count;
  }
  if (average.count > 0) average.mean = sum / average.count;
  return average;
}

std::string_view MetricWords(AutoscaleMetric metric) {
  switch (metric) {
    case AutoscaleMetric::kInFlight: return "in-flight";
    case AutoscaleMetric::kWaiting: return "waiting";
    case AutoscaleMetric::kKvCache: return "KV cache";
  }
  return "demand";
}

int32_t ReplicasFor(double demand, double target) {
  const double wanted = std::ceil(demand / target - 1e-9);  // 8 / 4 is 2, not 3
  return static_cast<int32_t>(std::clamp(wanted, 0.0, 1e6));
}

}  // namespace

AutoscaleDecision DecideReplicas(const AutoscaleInput& input, AutoscaleState& state) {
  const AutoscaleSpec& spec = *input.spec;
  const std::deque<DemandSample>& samples = *input.samples;
  const absl::Time now = input.now;
  const absl::Duration stable_window = absl::Seconds(spec.stable_window_seconds);
  const WindowAverage stable = Average(samples, now - stable_window);
  const WindowAverage panic = Average(samples, now - absl::Seconds(spec.panic_window_seconds));
  const bool covered = !samples.empty() && samples.front().time <= now - stable_window;
  const int32_t current = input.replicas;
  const std::string_view metric = MetricWords(spec.metric);

  // Panic: the recent demand is far above what the ready replicas are meant to carry.
  const double capacity = spec.target * std::max(1, input.ready_replicas);
  if (panic.count > 0 && panic.mean >= spec.panic_threshold * capacity) {
    state.panic_until = now + stable_window;
  }
  const bool in_panic = now < state.panic_until;

  AutoscaleDecision decision{.replicas = current, .panic = in_panic};
  int32_t wanted = current;
  if (in_panic) {
    wanted = std::max(current, ReplicasFor(panic.mean, spec.target));
    decision.reason = fmt::format("in panic: {} {:.1f} over {} s, target {:g} per replica", metric,
                                  panic.mean, spec.panic_window_seconds, spec.target);
  } else if (stable.count > 0) {
    wanted = ReplicasFor(stable.mean, spec.target);
    decision.reason = fmt::format("{} {:.1f} over {} s, target {:g} per replica", metric,
                                  stable.mean, spec.stable_window_seconds, spec.target);
  } else if (!input.woken) {
    return decision;  // nothing known: nothing to decide
  }

  // Zero is special both ways: from zero at once on any sign of demand, to zero only
  // after a whole stable window without any.
  const bool demand_now = input.woken || (panic.count > 0 && panic.mean > 0);
  if (current == 0 && demand_now) {
    wanted = std::max(wanted, 1);
    if (input.woken && wanted == 1) decision.reason = "woken by a request";
  } else if (wanted == 0) {
    const bool may_sleep = spec.scale_to_zero && covered && stable.mean == 0 && !input.woken;
    if (may_sleep) {
      decision.reason = fmt::format("no demand for {} s", spec.stable_window_seconds);
    } else {
      wanted = 1;
    }
  }
  wanted = std::clamp(wanted, spec.min_replicas, spec.max_replicas);

  // Replicas outside [min, max] (the settings just changed) are corrected at once;
  // within, cooldowns, the stable window and panic hold changes back.
  const bool out_of_range = current < spec.min_replicas || current > spec.max_replicas;
  if (!out_of_range && wanted != current) {
    const absl::Duration since_change = now - state.last_change;
    if (wanted > current && current > 0 &&
        since_change < absl::Seconds(spec.scale_up_cooldown_seconds)) {
      wanted = current;
    }
    if (wanted < current &&
        (in_panic || !covered || since_change < absl::Seconds(spec.scale_down_cooldown_seconds))) {
      wanted = current;
    }
    if (spec.max_step > 0) {
      wanted = std::clamp(wanted, current - spec.max_step, current + spec.max_step);
    }
  }
  if (out_of_range) {
    decision.reason = fmt::format("keeping within {} to {} replicas", spec.min_replicas,
                                  spec.max_replicas);
  }
  if (wanted != current) state.last_change = now;
  decision.replicas = wanted;
  return decision;
}

}  // namespace triplane::control
