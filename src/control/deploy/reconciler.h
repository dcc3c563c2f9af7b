#pragma once

// The deployment reconciler: converges the instances of every deployment in the store to
// its desired state through a Provider (provider.h), one pass at a time, like a
// Kubernetes controller.
//
// A pass, for each deployment (and for instances whose deployment is gone):
//  * observes every instance through the provider and writes its row (state, port, pid,
//    restarts, last_error) to the store;
//  * replaces a failed instance after an exponential backoff (initial_backoff doubled per
//    consecutive failure of that slot, up to max_backoff; `restarts` counts them);
//  * starts instances while fewer than `replicas` are starting or ready, if they fit:
//    placement sums the provider's Demand() of every instance it runs against its
//    Capacity(); an instance that does not fit is not started and the deployment stays
//    kPending with the reason ("needs 2 cores and 1.1 GiB; 1 core and 20 GiB free"),
//    never overcommitted;
//  * stops surplus instances (scale-down, deleted deployment, instances of a version the
//    spec no longer names once enough of the new version are ready): first out of the
//    ready endpoints, then, `unroute_delay` later, Stop(drain);
//  * runs a canary's instances next to the replicas; a rollout with no room for new
//    instances beside the old ones replaces them one at a time (two replicas or more);
//  * writes the deployment's status: phase, reason, ready replicas, observed generation.
//
// Passes run on the reconciler's own thread every `interval`, and at once after
// Trigger() (the admin API calls it after every deployment change).

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "control/deploy/provider.h"
#include "control/store/store.h"

namespace triplane::control {

struct ReconcilerOptions {
  absl::Duration interval = absl::Seconds(1);
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(60);
  // Grace given to an instance being stopped (scale-down, deletion, shutdown).
  absl::Duration drain_timeout = absl::Seconds(30);
  // An instance that is not ready this long after its start is killed and replaced.
  absl::Duration start_timeout = absl::Seconds(300);
  // Source of the time for backoff and start timeouts; absl::Now when empty (tests inject
  // one to step through backoff without sleeping).
  std::function<absl::Time()> clock;
  // Called (on the reconciler's thread, during a pass) when the set of ready endpoints
  // changes, before the pass writes the deployments' status: whoever routes by
  // ReadyEndpoints() can update its routes before anyone sees "running".
  std::function<void()> on_endpoints_changed;
  // Traffic first, then the process: an instance being stopped leaves the ready endpoints
  // at once (every gateway stops routing to it), and is told to drain this much later, so
  // that no gateway still holding the old routes sends it a request it would refuse.
  absl::Duration unroute_delay = absl::Seconds(2);
};

// A ready instance, for routing.
struct Endpoint {
  std::string instance_id;
  std::string deployment;
  std::string model;
  std::string version;
  std::string url;  // "http://127.0.0.1:PORT"

  bool operator==(const Endpoint&) const = default;
};

class Reconciler {
 public:
  Reconciler(Store& store, Provider& provider, ReconcilerOptions options = {});
  ~Reconciler();  // Stop(false) if still running.

  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Adopts the provider's instances recorded in the store (Provider::Adopt; rows of
  // instances that are gone are deleted), then starts the loop thread.
  [[nodiscard]] absl::Status Start();

  // Runs one pass now, on the caller's thread (tests; the loop calls it too). Passes
  // never overlap.
  void ReconcileOnce();

  // Wakes the loop for a pass as soon as possible.
  void Trigger();

  // Stops the loop. With `stop_instances`, every instance is drained (up to
  // drain_timeout) and stopped and its row deleted, as on a control plane shutdown.
  void Stop(bool stop_instances);

  // Ready instances serving `model` (every model when empty), from the last pass.
  // Thread-safe; cheap (a copy of a small vector).
  std::vector<Endpoint> ReadyEndpoints(std::string_view model = {}) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace triplane::control
