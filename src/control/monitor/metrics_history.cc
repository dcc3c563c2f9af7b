#include "control/monitor/metrics_history.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <utility>

#include "common/metrics.h"
#include "control/monitor/histogram_buckets.h"

namespace triplane::control {
namespace {

using common::exposition::AppendLabelValue;
using common::exposition::AppendValue;

// The engine families the points are derived from (docs/api.md, engine GET /metrics).
constexpr std::string_view kLatency = "triplane_e2e_request_latency_seconds";
constexpr std::string_view kTtft = "triplane_time_to_first_token_seconds";
constexpr std::string_view kTpot = "triplane_time_per_output_token_seconds";
constexpr std::string_view kPromptTokens = "triplane_prompt_tokens_total";
constexpr std::string_view kGenerationTokens = "triplane_generation_tokens_total";
constexpr std::string_view kRunning = "triplane_num_requests_running";
constexpr std::string_view kWaiting = "triplane_num_requests_waiting";
constexpr std::string_view kKvUsage = "triplane_kv_cache_usage_perc";
// The monitor's own re-exported families start with this; engine families that do too
// are not re-exported, so that no family appears twice.
constexpr std::string_view kOwnPrefix = "triplane_instance_";

// The cumulative values of one scrape of an engine.
struct EngineReading {
  std::optional<HistogramBuckets> latency, ttft, tpot;
  std::optional<double> prompt_tokens, generation_tokens;
  double running = kUnknown, waiting = kUnknown, kv_usage = kUnknown;
};

EngineReading Read(const ScrapedMetrics& metrics) {
  return {.latency = ReadHistogram(metrics, kLatency),
          .ttft = ReadHistogram(metrics, kTtft),
          .tpot = ReadHistogram(metrics, kTpot),
          .prompt_tokens = metrics.Sum(kPromptTokens),
          .generation_tokens = metrics.Sum(kGenerationTokens),
          .running = metrics.Sum(kRunning).value_or(kUnknown),
          .waiting = metrics.Sum(kWaiting).value_or(kUnknown),
          .kv_usage = metrics.Sum(kKvUsage).value_or(kUnknown)};
}

std::optional<HistogramBuckets> Delta(const std::optional<HistogramBuckets>& previous,
                                      const std::optional<HistogramBuckets>& current) {
  if (!current) return std::nullopt;
  if (!previous) return current;  // the family appeared: everything counted is new
  return BucketDelta(*previous, *current);
}

double Quantile(double q, const std::optional<HistogramBuckets>& buckets) {
  return buckets ? HistogramQuantile(q, *buckets) : kUnknown;
}

// Sum and mean of the known values; unknown when none is.
struct Accumulator {
  double sum = 0;
  int count = 0;
  void Add(double v) {
    if (std::isfinite(v)) sum += v, ++count;
  }
  double Sum() const { return count > 0 ? sum : kUnknown; }
  double Mean() const { return count > 0 ? sum / count : kUnknown; }
};

// One instance's contribution to a round: its point and its histogram differences.
struct InstanceRound {
  MetricsPoint point;
  std::optional<HistogramBuckets> latency, ttft, tpot;
};

void AppendLabels(std::string* out, const SeriesLabels& labels,
                  const std::vector<std::pair<std::string, std::string>>& more = {}) {
  out->push_back('{');
  const std::pair<std::string_view, const std::string*> ours[] = {{"deployment", &labels.deployment},
                                                                  {"model", &labels.model},
                                                                  {"version", &labels.version},
                                                                  {"instance", &labels.instance}};
  bool first = true;
  for (const auto& [name, value] : ours) {
    if (!first) out->push_back(',');
    first = false;
    out->append(name).append("=\"");
    AppendLabelValue(out, *value);
    out->push_back('"');
  }
  for (const auto& [name, value] : more) {
    // Ours win: an engine cannot pretend to be another deployment or instance.
    if (name == "deployment" || name == "model" || name == "version" || name == "instance") continue;
    out->push_back(',');
    out->append(name).append("=\"");
    AppendLabelValue(out, value);
    out->push_back('"');
  }
  out->append("} ");
}

bool FamilyTaken(const ScrapedFamily& family, const std::function<bool(std::string_view)>& taken) {
  if (taken(family.name) || std::string_view(family.name).starts_with(kOwnPrefix)) return true;
  if (family.type != SeriesType::kHistogram) return false;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (taken(family.name + suffix)) return true;
  }
  return false;
}

}  // namespace

struct MetricsHistory::Ring {
  std::deque<MetricsPoint> points;

  void Push(MetricsPoint point, size_t max_points, absl::Duration retention) {
    points.push_back(std::move(point));
    const absl::Time oldest = points.back().time - retention;
    while (points.size() > max_points || points.front().time < oldest) points.pop_front();
  }

  std::vector<MetricsPoint> Since(absl::Time from) const {
    auto first = std::find_if(points.begin(), points.end(),
                              [from](const MetricsPoint& p) { return p.time > from; });
    return {first, points.end()};
  }

  // No point, or none newer than `limit`.
  bool StaleAt(absl::Time limit) const { return points.empty() || points.back().time < limit; }
};

struct MetricsHistory::InstanceState {
  SeriesLabels labels;
  Ring ring;
  bool current = false;  // observed in the latest round
  std::shared_ptr<const ScrapedMetrics> latest;  // null when the latest scrape failed
  std::optional<EngineReading> reading;          // of the last successful scrape
  absl::Time reading_time;
  std::optional<common::ProcessUsage> process;
  absl::Time process_time;
  std::optional<GpuUsage> gpu;

  InstanceRound Observe(absl::Time t, const InstanceScrape& observation) {
    InstanceRound round{.point = {.time = t, .up = observation.metrics != nullptr}};
    MetricsPoint& point = round.point;
    latest = observation.metrics;
    if (observation.metrics != nullptr) {
      EngineReading now = Read(*observation.metrics);
      point.running = now.running;
      point.waiting = now.waiting;
      point.kv_cache_usage = now.kv_usage;
      if (reading.has_value()) {
        const double seconds = absl::ToDoubleSeconds(observation.time - reading_time);
        round.latency = Delta(reading->latency, now.latency);
        round.ttft = Delta(reading->ttft, now.ttft);
        round.tpot = Delta(reading->tpot, now.tpot);
        if (seconds > 0) {
          if (round.latency) point.requests_per_second = round.latency->total() / seconds;
          if (now.generation_tokens) {
            const double generated =
                CounterDelta(reading->generation_tokens.value_or(0), *now.generation_tokens);
            point.generation_tokens_per_second = generated / seconds;
            if (now.prompt_tokens) {
              point.tokens_per_second =
                  (generated + CounterDelta(reading->prompt_tokens.value_or(0), *now.prompt_tokens)) /
                  seconds;
            }
          }
        }
        point.latency_p50_seconds = Quantile(0.5, round.latency);
        point.latency_p99_seconds = Quantile(0.99, round.latency);
        point.ttft_p50_seconds = Quantile(0.5, round.ttft);
        point.ttft_p99_seconds = Quantile(0.99, round.ttft);
        point.tpot_p50_seconds = Quantile(0.5, round.tpot);
      }
      reading = std::move(now);
      reading_time = observation.time;
    }
    if (observation.process) {
      point.rss_bytes = observation.process->rss_bytes;
      const double seconds = absl::ToDoubleSeconds(observation.time - process_time);
      if (process && seconds > 0 && observation.process->cpu_seconds >= process->cpu_seconds) {
        point.cpu_percent = (observation.process->cpu_seconds - process->cpu_seconds) / seconds * 100;
      }
      process_time = observation.time;
    }
    process = observation.process;
    gpu = observation.gpu;
    if (gpu) {
      point.gpu_utilization_percent = gpu->utilization_percent;
      point.gpu_memory_bytes = gpu->memory_bytes;
    }
    return round;
  }
};

struct MetricsHistory::DeploymentState {
  SeriesLabels labels;
  Ring ring;
  int instances = 0;  // observed in the latest round
};

MetricsHistory::MetricsHistory(MetricsHistoryOptions options)
    : options_(options), interval_(options.interval) {}

MetricsHistory::~MetricsHistory() = default;

absl::Duration MetricsHistory::interval() const {
  absl::MutexLock lock(&mu_);
  return interval_;
}

void MetricsHistory::set_interval(absl::Duration interval) {
  absl::MutexLock lock(&mu_);
  interval_ = interval;
}

size_t MetricsHistory::MaxPointsLocked() const {
  const absl::Duration step = std::max(interval_, absl::Seconds(1));
  return static_cast<size_t>(std::ceil(absl::FDivDuration(options_.retention, step))) + 1;
}

void MetricsHistory::Record(absl::Time t, const std::vector<SeriesLabels>& deployments,
                            std::vector<InstanceScrape> observations) {
  absl::MutexLock lock(&mu_);
  const size_t max_points = MaxPointsLocked();
  for (auto& [id, state] : instances_) state->current = false;
  std::map<std::string, std::vector<InstanceRound>> by_deployment;
  std::map<std::string, int> observed;
  for (InstanceScrape& observation : observations) {
    std::unique_ptr<InstanceState>& state = instances_[observation.labels.instance];
    if (state == nullptr) state = std::make_unique<InstanceState>();
    state->labels = observation.labels;
    state->current = true;
    InstanceRound round = state->Observe(t, observation);
    state->ring.Push(round.point, max_points, options_.retention);
    ++observed[observation.labels.deployment];
    if (round.point.up == true) by_deployment[observation.labels.deployment].push_back(std::move(round));
  }

  for (auto& [name, state] : deployments_) state->instances = 0;
  for (const SeriesLabels& labels : deployments) {
    std::unique_ptr<DeploymentState>& state = deployments_[labels.deployment];
    if (state == nullptr) state = std::make_unique<DeploymentState>();
    state->labels = labels;
    state->labels.instance.clear();
    state->instances = observed[labels.deployment];
    MetricsPoint point{.time = t};
    Accumulator requests, tokens, generation, running, waiting, kv, cpu, rss, gpu_util, gpu_memory;
    std::optional<HistogramBuckets> latency, ttft, tpot;
    auto add = [](std::optional<HistogramBuckets>& sum, const std::optional<HistogramBuckets>& more) {
      if (!more) return;
      if (!sum) sum.emplace();
      AddBuckets(*sum, *more);  // an instance with other bounds (another build) is left out
    };
    for (const InstanceRound& round : by_deployment[labels.deployment]) {
      const MetricsPoint& p = round.point;
      requests.Add(p.requests_per_second);
      tokens.Add(p.tokens_per_second);
      generation.Add(p.generation_tokens_per_second);
      running.Add(p.running);
      waiting.Add(p.waiting);
      kv.Add(p.kv_cache_usage);
      cpu.Add(p.cpu_percent);
      rss.Add(p.rss_bytes);
      gpu_util.Add(p.gpu_utilization_percent);
      gpu_memory.Add(p.gpu_memory_bytes);
      add(latency, round.latency);
      add(ttft, round.ttft);
      add(tpot, round.tpot);
    }
    point.requests_per_second = requests.Sum();
    point.tokens_per_second = tokens.Sum();
    point.generation_tokens_per_second = generation.Sum();
    point.running = running.Sum();
    point.waiting = waiting.Sum();
    point.kv_cache_usage = kv.Mean();
    point.cpu_percent = cpu.Mean();
    point.rss_bytes = rss.Sum();
    point.gpu_utilization_percent = gpu_util.Mean();
    point.gpu_memory_bytes = gpu_memory.Sum();
    point.latency_p50_seconds = Quantile(0.5, latency);
    point.latency_p99_seconds = Quantile(0.99, latency);
    point.ttft_p50_seconds = Quantile(0.5, ttft);
    point.ttft_p99_seconds = Quantile(0.99, ttft);
    point.tpot_p50_seconds = Quantile(0.5, tpot);
    state->ring.Push(point, max_points, options_.retention);
  }

  // Series nobody observes any more go once their newest point is past the retention.
  const absl::Time limit = t - options_.retention;
  std::erase_if(instances_, [limit](const auto& entry) {
    return !entry.second->current && entry.second->ring.StaleAt(limit);
  });
  std::erase_if(deployments_, [limit](const auto& entry) { return entry.second->ring.StaleAt(limit); });
}

std::vector<DeploymentMetricsSummary> MetricsHistory::Deployments() const {
  absl::MutexLock lock(&mu_);
  std::vector<DeploymentMetricsSummary> out;
  for (const auto& [name, state] : deployments_) {
    DeploymentMetricsSummary summary{.labels = state->labels, .instances = state->instances};
    if (!state->ring.points.empty()) summary.latest = state->ring.points.back();
    out.push_back(std::move(summary));
  }
  return out;
}

std::optional<MetricsSeries> MetricsHistory::Deployment(const std::string& name,
                                                        absl::Duration window,
                                                        absl::Time now) const {
  absl::MutexLock lock(&mu_);
  auto it = deployments_.find(name);
  if (it == deployments_.end()) return std::nullopt;
  return MetricsSeries{.labels = it->second->labels, .points = it->second->ring.Since(now - window)};
}

std::optional<MetricsSeries> MetricsHistory::Instance(const std::string& id, absl::Duration window,
                                                      absl::Time now) const {
  absl::MutexLock lock(&mu_);
  auto it = instances_.find(id);
  if (it == instances_.end()) return std::nullopt;
  return MetricsSeries{.labels = it->second->labels, .points = it->second->ring.Since(now - window)};
}

void MetricsHistory::AppendRelabelled(const std::function<bool(std::string_view)>& taken,
                                      std::string* out) const {
  absl::MutexLock lock(&mu_);
  // Family name -> (instance, its family), instances in id order.
  std::map<std::string_view, std::vector<std::pair<const SeriesLabels*, const ScrapedFamily*>>> families;
  for (const auto& [id, state] : instances_) {
    if (!state->current || state->latest == nullptr) continue;
    for (const ScrapedFamily& family : state->latest->families) {
      if (family.samples.empty()) continue;
      if (family.type != SeriesType::kCounter && family.type != SeriesType::kGauge &&
          family.type != SeriesType::kHistogram) {
        continue;
      }
      families[family.name].emplace_back(&state->labels, &family);
    }
  }
  for (const auto& [name, members] : families) {
    const ScrapedFamily& first = *members.front().second;
    if (FamilyTaken(first, taken)) continue;
    out->append("# HELP ").append(name);
    if (!first.help.empty()) {
      out->push_back(' ');
      common::exposition::AppendHelp(out, first.help);
    }
    out->append("\n# TYPE ").append(name).push_back(' ');
    out->append(SeriesTypeName(first.type)).push_back('\n');
    for (const auto& [labels, family] : members) {
      if (family->type != first.type) continue;  // instances disagree: keep the first kind
      for (const ScrapedSample& sample : family->samples) {
        out->append(sample.name);
        AppendLabels(out, *labels, sample.labels);
        AppendValue(out, sample.value);
        out->push_back('\n');
      }
    }
  }

  // What the monitor itself knows of each instance.
  struct Own {
    std::string_view name, help, type;
    std::function<std::optional<double>(const InstanceState&)> value;
  };
  const Own own[] = {
      {"triplane_instance_up", "1 when the last scrape of the instance's /metrics succeeded.", "gauge",
       [](const InstanceState& s) -> std::optional<double> { return s.latest != nullptr ? 1 : 0; }},
      {"triplane_instance_cpu_seconds_total", "CPU time of the instance's process (from /proc).",
       "counter",
       [](const InstanceState& s) -> std::optional<double> {
         if (!s.process) return std::nullopt;
         return s.process->cpu_seconds;
       }},
      {"triplane_instance_resident_memory_bytes", "Resident memory of the instance's process.", "gauge",
       [](const InstanceState& s) -> std::optional<double> {
         if (!s.process) return std::nullopt;
         return s.process->rss_bytes;
       }},
      {"triplane_instance_gpu_utilization_percent",
       "Utilisation of the GPUs the instance's process runs on (NVML).", "gauge",
       [](const InstanceState& s) -> std::optional<double> {
         if (!s.gpu || !std::isfinite(s.gpu->utilization_percent)) return std::nullopt;
         return s.gpu->utilization_percent;
       }},
      {"triplane_instance_gpu_memory_bytes", "GPU memory used by the instance's process (NVML).",
       "gauge",
       [](const InstanceState& s) -> std::optional<double> {
         if (!s.gpu || !std::isfinite(s.gpu->memory_bytes)) return std::nullopt;
         return s.gpu->memory_bytes;
       }},
  };
  for (const Own& family : own) {
    if (taken(family.name)) continue;
    std::string samples;
    for (const auto& [id, state] : instances_) {
      if (!state->current) continue;
      const std::optional<double> value = family.value(*state);
      if (!value) continue;
      samples.append(family.name);
      AppendLabels(&samples, state->labels);
      AppendValue(&samples, *value);
      samples.push_back('\n');
    }
    if (samples.empty()) continue;
    out->append("# HELP ").append(family.name).push_back(' ');
    out->append(family.help).append("\n# TYPE ").append(family.name).push_back(' ');
    out->append(family.type).push_back('\n');
    out->append(samples);
  }
}

}  // namespace triplane::control
