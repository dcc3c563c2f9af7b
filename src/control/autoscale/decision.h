#pragma once

// The autoscaler's decision, KPA-style (Knative's pod autoscaler), as a pure function of
// the samples seen, the settings and a little state, so that tests drive it with a fake
// clock and made-up samples.
//
// Each sample is the deployment's total demand at one moment: requests in flight (or
// waiting, or KV cache usage × ready replicas) summed over its instances. Replicas wanted
// = ceil(average / target), over two windows:
//  * the stable window (60 s by default) decides normally;
//  * the panic window (10 s) reacts to bursts: when its demand reaches panic_threshold
//    (2×) times what the ready replicas are meant to carry, the autoscaler enters panic,
//    scales up by the panic window's demand and never scales down while in panic; panic
//    ends once a whole stable window has passed without the threshold being reached.
// Then: at least min and at most max replicas, at most max_step changed per decision,
// no scale-up within scale_up_cooldown of the last change and no scale-down within
// scale_down_cooldown of it. Scale-down also waits until the samples cover a whole stable
// window (a control plane that just started knows too little). To zero only when
// scale_to_zero and every sample of a whole stable window is zero; from zero at once on
// any demand (or a wake-up from the gateway), whatever the cooldowns.

#include <cstdint>
#include <deque>
#include <string>

#include "absl/time/time.h"
#include "control/store/store_types.h"

namespace triplane::control {

struct DemandSample {
  absl::Time time;
  double value = 0;  // total over the deployment's instances
};

// What the autoscaler remembers of a deployment between decisions.
struct AutoscaleState {
  absl::Time panic_until = absl::InfinitePast();  // in panic while now < panic_until
  absl::Time last_change = absl::InfinitePast();  // when replicas last changed
};

struct AutoscaleInput {
  const AutoscaleSpec* spec = nullptr;  // required
  absl::Time now;
  int32_t replicas = 0;        // the spec's replicas now
  int32_t ready_replicas = 0;  // ready now (panic compares the demand with these)
  // Oldest first; those older than the stable window are ignored.
  const std::deque<DemandSample>* samples = nullptr;
  bool woken = false;  // the gateway holds requests for this deployment (scale from zero)
};

struct AutoscaleDecision {
  int32_t replicas = 0;  // what to set (== input replicas: no change)
  bool panic = false;    // in panic after this decision
  // Why, for the deployment event when replicas change: "in-flight 11.2 over 60 s,
  // target 4 per replica", "in panic: …", "no demand for 60 s", "woken by a request".
  std::string reason;
};

// Decides, and updates `state` (panic, last change).
AutoscaleDecision DecideReplicas(const AutoscaleInput& input, AutoscaleState& state);

}  // namespace triplane::control
