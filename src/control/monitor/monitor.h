#pragma once

// The monitoring center's scraper: every `interval` it asks for the current targets
// (deployments and their engine instances), fetches every instance's /metrics at once
// (each with `scrape_timeout`), reads the local processes' CPU time and memory from
// /proc and their GPU use from NVML when a GPU exists, and records the round in a
// MetricsHistory. It runs on a thread of its own: a slow or dead engine makes that
// instance `up` 0 for the round and never blocks anything else.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "control/monitor/metrics_history.h"
#include "control/store/store.h"
#include "nlohmann/json.hpp"

namespace triplane::common {
class HttpClient;
}

namespace triplane::control {

class GpuUsageReader;

// One engine instance to scrape.
struct MonitorTarget {
  SeriesLabels labels;  // `instance` set
  std::string url;      // the engine's base URL, "http://127.0.0.1:PORT"
  int64_t pid = 0;      // its process on this machine, for /proc and NVML; 0: none
};

struct MonitorTargets {
  std::vector<SeriesLabels> deployments;  // every deployment (`instance` empty)
  std::vector<MonitorTarget> instances;
};

// The targets recorded in `store`: every deployment (model and version of its spec) and
// every instance that is ready or draining; local instances with their pid.
[[nodiscard]] absl::StatusOr<MonitorTargets> TargetsFromStore(Store& store);

struct MonitorOptions {
  absl::Duration interval = absl::Seconds(5);
  absl::Duration retention = absl::Hours(1);
  // Per scrape; never more than the interval.
  absl::Duration scrape_timeout = absl::Seconds(4);
  size_t max_scrape_bytes = 16u << 20;
  // Required. Called on the monitor's thread at the start of every round; may block.
  std::function<absl::StatusOr<MonitorTargets>()> targets;
  bool gpu = true;  // read GPU use through NVML when the library loads
};

class Monitor {
 public:
  explicit Monitor(MonitorOptions options);
  ~Monitor();  // Stop().

  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Starts the scrape loop (first round at once).
  void Start();
  // Ends the loop; a round in progress finishes first (bounded by the scrape timeout).
  void Stop();

  // Runs one round now, on the caller's thread (tests). Rounds never overlap.
  void ScrapeOnce();

  // Changes the interval (e.g. the config key monitor.interval); takes effect at once.
  // REQUIRES: interval >= 1 s (shorter ones are raised to 1 s).
  void SetInterval(absl::Duration interval);

  MetricsHistory& history() { return history_; }
  const MetricsHistory& history() const { return history_; }

 private:
  void Loop();
  // The scraped pages of `targets`, null for failed scrapes, in the same order.
  std::vector<InstanceScrape> Scrape(const std::vector<MonitorTarget>& targets);

  const MonitorOptions options_;
  MetricsHistory history_;
  std::unique_ptr<common::HttpClient> client_;
  std::unique_ptr<GpuUsageReader> gpu_;

  absl::Mutex round_mu_;  // one round at a time
  std::map<std::string, bool> was_up_ ABSL_GUARDED_BY(round_mu_);  // for state-change logs
  absl::Time targets_warned_ ABSL_GUARDED_BY(round_mu_) = absl::InfinitePast();

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The handler of config key `monitor.interval` (seconds, 1..3600): sets `monitor`'s
// interval; deleting the key restores `initial`.
std::function<absl::Status(const std::optional<nlohmann::json>&)> MonitorIntervalHandler(
    Monitor& monitor, absl::Duration initial);

}  // namespace triplane::control
