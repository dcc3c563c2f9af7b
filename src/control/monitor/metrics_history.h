#pragma once

// The monitor's memory: per engine instance and per deployment, a ring of MetricsPoints
// covering `retention` (one point per scrape round), derived from consecutive scrapes,
// plus each instance's latest scrape for the aggregated re-export. No I/O and no clock
// of its own (the caller passes times), so tests drive it scrape by scrape.
//
// Per instance and round: rates from counter differences over the time between its last
// two successful scrapes (a counter that went down means the engine restarted: counted
// from zero), quantiles from the histogram buckets' differences, gauges as scraped, CPU %
// from the CPU seconds' difference. The first successful scrape of an instance has no
// rates or quantiles yet. Per deployment and round: sums over its instances that were up
// (rates, running, waiting, RSS, GPU memory), means (KV usage, CPU %, GPU utilisation),
// quantiles from the summed bucket differences.
//
// Memory is bounded: at most ceil(retention / max(interval, 1 s)) + 1 points a series;
// instances and deployments that are no longer observed keep their points until the
// newest one is older than `retention`, then they are dropped.
//
// Thread-safe (one mutex).

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/process_metrics.h"
#include "control/monitor/gpu_usage.h"
#include "control/monitor/metrics_point.h"
#include "control/monitor/prometheus_text.h"

namespace triplane::control {

// Where a series belongs; the labels of the re-export.
struct SeriesLabels {
  std::string deployment;
  std::string model;
  std::string version;
  std::string instance;  // empty for a deployment

  bool operator==(const SeriesLabels&) const = default;
};

// One instance's scrape in a round.
struct InstanceScrape {
  SeriesLabels labels;  // `instance` set
  absl::Time time;      // when the scrape finished
  // The parsed page; null when the scrape failed (the instance is down this round).
  std::shared_ptr<const ScrapedMetrics> metrics;
  std::optional<common::ProcessUsage> process;  // local instances whose process we can read
  std::optional<GpuUsage> gpu;                  // when NVML knows the process
};

// A series for the admin API.
struct MetricsSeries {
  SeriesLabels labels;
  std::vector<MetricsPoint> points;  // oldest first
};

// A deployment's latest state, for the list.
struct DeploymentMetricsSummary {
  SeriesLabels labels;
  int instances = 0;  // instances observed in the latest round
  std::optional<MetricsPoint> latest;
};

struct MetricsHistoryOptions {
  absl::Duration interval = absl::Seconds(5);
  absl::Duration retention = absl::Hours(1);
};

class MetricsHistory {
 public:
  explicit MetricsHistory(MetricsHistoryOptions options = {});
  ~MetricsHistory();

  MetricsHistory(const MetricsHistory&) = delete;
  MetricsHistory& operator=(const MetricsHistory&) = delete;

  // Records one scrape round at time `t`: a point per observation and a point per entry
  // of `deployments` (every deployment that exists, also one without instances).
  // Deployments and instances absent from a round get no point for it.
  void Record(absl::Time t, const std::vector<SeriesLabels>& deployments,
              std::vector<InstanceScrape> observations);

  // Deployments with a series, by name.
  std::vector<DeploymentMetricsSummary> Deployments() const;
  // The points of the last `window` before `now`; nullopt for an unknown name or id.
  std::optional<MetricsSeries> Deployment(const std::string& name, absl::Duration window,
                                          absl::Time now) const;
  std::optional<MetricsSeries> Instance(const std::string& id, absl::Duration window,
                                        absl::Time now) const;

  // Appends the latest scrape of every instance observed in the last round, relabelled
  // with deployment, model, version and instance, plus the monitor's own per-instance
  // families (triplane_instance_up, _cpu_seconds_total, _resident_memory_bytes, GPU),
  // in the text format: one HELP and TYPE per family. Families (and sample names) for
  // which `taken` is true are left out. Counter, gauge and histogram families only.
  void AppendRelabelled(const std::function<bool(std::string_view)>& taken, std::string* out) const;

  // The scrape interval (for the admin API and the ring sizes); settable while running.
  absl::Duration interval() const;
  void set_interval(absl::Duration interval);
  absl::Duration retention() const { return options_.retention; }

 private:
  struct Ring;
  struct InstanceState;
  struct DeploymentState;

  size_t MaxPointsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  MetricsHistoryOptions options_;
  mutable absl::Mutex mu_;
  absl::Duration interval_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<InstanceState>> instances_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<DeploymentState>> deployments_ ABSL_GUARDED_BY(mu_);
};

}  // namespace triplane::control
