#pragma once

// Canary analysis: while a deployment runs a canary, its error rate is compared with a
// threshold over a sliding window of the usage ledger (one row per request, with the
// version that served it), and a canary that fails too often is rolled back: the canary
// is cleared from the spec (audit actor "canary-analysis") and a deployment event says
// why. A request counts as an error when the gateway answered it 5xx (an instance that
// failed, before or while answering); client errors and clients that went away do not.
//
// Thresholds come from the config center, read at every round:
//   rollout.canary.max_error_rate   0..1, default 0.1
//   rollout.canary.min_requests     requests of the canary before judging, default 20
//   rollout.canary.window_seconds   the window, default 60

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "control/store/store.h"
#include "nlohmann/json.hpp"

namespace triplane::control {

// Requests, errors and latency of one version over the window.
struct VersionStats {
  int64_t requests = 0;
  int64_t errors = 0;
  double p50_latency_seconds = 0;
  double p99_latency_seconds = 0;
  double ErrorRate() const { return requests > 0 ? static_cast<double>(errors) / static_cast<double>(requests) : 0; }
};

struct CanaryThresholds {
  double max_error_rate = 0.1;
  int64_t min_requests = 20;
  absl::Duration window = absl::Seconds(60);
};

// The thresholds the config center sets (defaults for keys absent or of the wrong type).
CanaryThresholds ThresholdsFromConfig(Store& store);

// Per version, from `records` (rows of one model).
std::map<std::string, VersionStats> StatsByVersion(const std::vector<UsageRecord>& records);

// Why the canary of `deployment` must be rolled back, or nullopt when it may go on.
std::optional<std::string> JudgeCanary(const Deployment& deployment,
                                       const std::map<std::string, VersionStats>& stats,
                                       const CanaryThresholds& thresholds);

// The stats of a deployment's model over `window` up to now (for the admin API too).
[[nodiscard]] absl::StatusOr<std::map<std::string, VersionStats>> RecentStats(Store& store,
                                                                              const std::string& model,
                                                                              absl::Duration window);

nlohmann::json ToJson(const VersionStats& stats);

struct CanaryAnalysisOptions {
  absl::Duration interval = absl::Seconds(2);
  std::function<void()> on_rollback;  // e.g. the reconciler's Trigger and the feed's Refresh
};

class CanaryAnalysis {
 public:
  CanaryAnalysis(Store& store, CanaryAnalysisOptions options);
  ~CanaryAnalysis();  // Stop().

  void Start();
  void Stop();
  // One round now, on the caller's thread (tests).
  void RunOnce();

 private:
  Store& store_;
  const CanaryAnalysisOptions options_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace triplane::control
