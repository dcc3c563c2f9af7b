#pragma once

// The `local` provider: engine instances as child `triplane engine` processes on this
// machine, listening on free 127.0.0.1 ports.
//
// Start() spawns `ENGINE_BINARY engine --model FILE --host 127.0.0.1 --port 0
// --served-model-name MODEL --instance-id ID --threads T [--ctx C] [--kv-memory B]
// [--max-batch-tokens N] EXTRA_ARGS...` in its own process group, with stdout (the URL
// line the engine prints when ready) and stderr (its log) in files under `work_dir`.
// A monitor thread reads the URL, polls `GET /health` every `health_interval`, and
// reaps exits: a process that exits or stops answering (`health_failures` polls in a
// row) is kFailed with the reason (exit status and the last line of its log).
// Stop() sends SIGTERM (the engine drains) and SIGKILL after the grace.
//
// Adopt() takes over a process started by an earlier control plane: it must be alive,
// its /proc/PID/cmdline must carry `--instance-id ID`, and its /health must answer.
// Such a process is not our child: its exit is seen through /proc and health checks.

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "control/deploy/provider.h"

namespace triplane::control {

struct LocalProviderOptions {
  std::string engine_binary;  // the `triplane` executable (usually /proc/self/exe)
  std::string work_dir;       // per-instance log files; created if missing
  std::string host = "127.0.0.1";
  std::vector<std::string> extra_engine_args;  // appended to every engine command line
  // Capacity; 0 = detected (cores this process may run on; MemTotal minus 10 %).
  int32_t cores = 0;
  int64_t memory_bytes = 0;
  // Threads of an instance whose settings say 0.
  int32_t default_threads = 1;
  absl::Duration health_interval = absl::Milliseconds(500);
  int health_failures = 3;
};

class LocalProvider : public Provider {
 public:
  explicit LocalProvider(LocalProviderOptions options);
  ~LocalProvider() override;  // Kills (SIGKILL) whatever is still running.

  std::string_view name() const override { return "local"; }
  Resources Capacity() const override;
  Resources Demand(const InstanceLaunch& launch) const override;
  [[nodiscard]] absl::StatusOr<Instance> Start(const InstanceLaunch& launch) override;
  [[nodiscard]] absl::StatusOr<InstanceObservation> Observe(std::string_view id) override;
  void Stop(std::string_view id, absl::Duration grace) override;
  void Kill(std::string_view id) override;
  [[nodiscard]] absl::Status Adopt(const Instance& instance) override;
  void StopAll(absl::Duration grace) override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace triplane::control
