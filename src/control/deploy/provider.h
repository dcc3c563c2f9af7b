#pragma once

// Where engine instances run. The reconciler (reconciler.h) decides how many instances
// of which model version each deployment needs; a provider makes them exist: `local`
// runs child `triplane engine` processes on this machine (providers/local), a later
// `kubernetes` provider will manage pods. The interface speaks of instances and
// resources, never of process ids, so that the reconciler works with any provider.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control/store/store_types.h"

namespace triplane::control {

// Resources, for placement: CPU cores (the engine's compute threads) and bytes of memory.
struct Resources {
  int32_t cores = 0;
  int64_t memory_bytes = 0;

  bool operator==(const Resources&) const = default;
};

// Everything needed to start one instance.
struct InstanceLaunch {
  std::string id;          // chosen by the reconciler: "<deployment>-<6 random [a-z0-9]>"
  std::string deployment;
  std::string model;       // the served model name (`"model"` in requests)
  std::string version;
  std::string model_path;  // the version's GGUF file
  int64_t model_bytes = 0;
  EngineSettings engine;   // 0 fields: the provider's defaults (see Demand)
  GgufSummary gguf;        // for memory estimates
};

// What a provider reports about one instance when asked (Observe).
struct InstanceObservation {
  InstanceState state = InstanceState::kStarting;  // kStopped/kFailed: gone
  std::string host;
  int32_t port = 0;
  int64_t pid = 0;
  std::string last_error;  // why it failed or exited ("exit code 1: <last log line>")
};

class Provider {
 public:
  virtual ~Provider() = default;

  virtual std::string_view name() const = 0;  // "local"

  // What this provider can hold in all (placement never exceeds it).
  virtual Resources Capacity() const = 0;
  // What one instance of `launch` needs (threads → cores; model file + KV cache +
  // overhead → memory), with the provider's defaults filled in for 0 settings.
  virtual Resources Demand(const InstanceLaunch& launch) const = 0;

  // Starts an instance and returns at once with its row in state kStarting (host, port
  // and pid as far as known). The provider then brings it to kReady or kFailed on its
  // own; Observe() reports where it is.
  [[nodiscard]] virtual absl::StatusOr<Instance> Start(const InstanceLaunch& launch) = 0;

  // The instance's current state. NotFound when the provider does not know the id.
  [[nodiscard]] virtual absl::StatusOr<InstanceObservation> Observe(std::string_view id) = 0;

  // Begins a graceful stop: the instance drains (finishes in-flight requests, takes no
  // new ones) for up to `grace`, then is killed. Returns at once; Observe() shows
  // kDraining, then kStopped. Unknown ids are OK (nothing to stop).
  virtual void Stop(std::string_view id, absl::Duration grace) = 0;

  // Kills at once (no drain), e.g. a process that no longer answers health checks.
  virtual void Kill(std::string_view id) = 0;

  // Takes over an instance started by an earlier control plane process (its row from the
  // store). OK when it is still the same live instance and answers health checks: it is
  // then tracked like one started here. NotFound when it is gone (the caller deletes the
  // row and starts a replacement).
  [[nodiscard]] virtual absl::Status Adopt(const Instance& instance) = 0;

  // Stops every instance this provider tracks, draining each for up to `grace` (in
  // parallel), and waits until all are gone. For the control plane's own shutdown.
  virtual void StopAll(absl::Duration grace) = 0;
};

}  // namespace triplane::control
