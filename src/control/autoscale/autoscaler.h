#pragma once

// The autoscaler's loop: every `period` (1 s) it samples the demand of each deployment
// that has autoscale settings, decides with DecideReplicas (decision.h) and, when the
// replicas should change, writes them to the deployment's spec (audited with actor
// "autoscaler", guarded by the generation it read) and appends a "scaled" deployment
// event with the reason: "scaled 1 → 3: in-flight 11.2 over 60 s, target 4 per replica".
// The reconciler does the rest; a scale-down stops instances with a drain, so requests
// in flight finish.
//
// Demand, per metric:
//  * in_flight: with `outstanding` — `triplane serve` passes the gateway's own count of
//    the requests it has forwarded to an instance and not yet finished, which is exact
//    and current (a request queued in an engine is in flight too) — the sum over the
//    deployment's ready instances, or the monitor's latest running + waiting when that
//    is higher (requests through other gateways); without `outstanding` (gateways run
//    elsewhere), the monitor's alone, as fresh as the monitor's interval.
//  * waiting: the monitor's latest requests queued in the deployment's engines.
//  * kv_cache: the monitor's latest mean KV cache usage × the ready replicas.
// A deployment without ready instances has no demand the engines could report; only a
// Wake() (the gateway holding a request for it) counts then.

#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "control/autoscale/decision.h"
#include "control/monitor/metrics_history.h"
#include "control/store/store.h"

namespace triplane::control {

struct AutoscalerOptions {
  absl::Duration period = absl::Seconds(1);
  // Requests in flight to an instance (by id) right now. When empty, running + waiting
  // from the monitor stand in.
  std::function<int64_t(const std::string& instance)> outstanding;
  // Called after replicas changed (the control plane triggers the reconciler).
  std::function<void()> on_scaled;
  // How long a Wake() counts as demand.
  absl::Duration wake_hold = absl::Seconds(10);
};

class Autoscaler {
 public:
  Autoscaler(Store& store, const MetricsHistory& history, AutoscalerOptions options);
  ~Autoscaler();  // Stop().

  Autoscaler(const Autoscaler&) = delete;
  Autoscaler& operator=(const Autoscaler&) = delete;

  void Start();
  void Stop();

  // The gateway holds a request for `deployment` (which may be at zero replicas): it
  // counts as demand for `wake_hold`, and a round runs at once.
  void Wake(const std::string& deployment);

  // One round: sample, decide, write. On the caller's thread (tests); rounds never overlap.
  void RunOnce();

 private:
  struct Tracked {
    std::deque<DemandSample> samples;
    AutoscaleState state;
  };

  void Loop();
  void Decide(const Deployment& deployment, absl::Time now, std::optional<double> demand,
              bool woken);

  Store& store_;
  const MetricsHistory& history_;
  const AutoscalerOptions options_;
  absl::Mutex round_mu_;
  std::map<std::string, Tracked> tracked_ ABSL_GUARDED_BY(round_mu_);
  absl::Mutex mu_;
  std::map<std::string, absl::Time> woken_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace triplane::control
