#include "control/deploy/canary_analysis.h"

#include <algorithm>

#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::control {
namespace {

double Quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto at = static_cast<size_t>(q * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(at, values.size() - 1)];
}

template <typename T>
T ConfigNumber(Store& store, const char* key, T fallback, T min, T max) {
  absl::StatusOr<ConfigEntry> entry = store.GetConfig(key);
  if (!entry.ok() || !entry->value.is_number()) return fallback;
  const T value = entry->value.get<T>();
  return value < min || value > max ? fallback : value;
}

}  // namespace

CanaryThresholds ThresholdsFromConfig(Store& store) {
  CanaryThresholds t;
  t.max_error_rate = ConfigNumber<double>(store, "rollout.canary.max_error_rate", t.max_error_rate, 0.0, 1.0);
  t.min_requests = ConfigNumber<int64_t>(store, "rollout.canary.min_requests", t.min_requests, 1, 1'000'000);
  t.window = absl::Seconds(ConfigNumber<int64_t>(store, "rollout.canary.window_seconds", 60, 5, 86'400));
  return t;
}

std::map<std::string, VersionStats> StatsByVersion(const std::vector<UsageRecord>& records) {
  std::map<std::string, VersionStats> stats;
  std::map<std::string, std::vector<double>> latencies;
  for (const UsageRecord& r : records) {
    if (r.version.empty()) continue;  // never reached an instance
    VersionStats& s = stats[r.version];
    ++s.requests;
    if (r.status >= 500) ++s.errors;
    latencies[r.version].push_back(r.latency_seconds);
  }
  for (auto& [version, s] : stats) {
    s.p50_latency_seconds = Quantile(latencies[version], 0.5);
    s.p99_latency_seconds = Quantile(latencies[version], 0.99);
  }
  return stats;
}

std::optional<std::string> JudgeCanary(const Deployment& deployment,
                                       const std::map<std::string, VersionStats>& stats,
                                       const CanaryThresholds& thresholds) {
  const std::string& canary = deployment.spec.canary_version;
  if (canary.empty()) return std::nullopt;
  const auto it = stats.find(canary);
  if (it == stats.end() || it->second.requests < thresholds.min_requests) return std::nullopt;
  const VersionStats& s = it->second;
  if (s.ErrorRate() <= thresholds.max_error_rate) return std::nullopt;
  return fmt::format("canary {} failed {} of {} requests ({:.0f}%) in the last {}, above the {:.0f}% allowed",
                     canary, s.errors, s.requests, 100 * s.ErrorRate(), absl::FormatDuration(thresholds.window),
                     100 * thresholds.max_error_rate);
}

absl::StatusOr<std::map<std::string, VersionStats>> RecentStats(Store& store, const std::string& model,
                                                                absl::Duration window) {
  UsageQuery query{.from = absl::Now() - window, .model = model, .limit = 100000};
  absl::StatusOr<std::vector<UsageRecord>> rows = store.ListUsage(query);
  if (!rows.ok()) return rows.status();
  return StatsByVersion(*rows);
}

nlohmann::json ToJson(const VersionStats& s) {
  return {{"requests", s.requests},
          {"errors", s.errors},
          {"error_rate", s.ErrorRate()},
          {"p50_latency_seconds", s.p50_latency_seconds},
          {"p99_latency_seconds", s.p99_latency_seconds}};
}

CanaryAnalysis::CanaryAnalysis(Store& store, CanaryAnalysisOptions options)
    : store_(store), options_(std::move(options)) {}

CanaryAnalysis::~CanaryAnalysis() { Stop(); }

void CanaryAnalysis::Start() {
  thread_ = std::thread([this] {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.interval)) return;
      }
      RunOnce();
    }
  });
}

void CanaryAnalysis::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void CanaryAnalysis::RunOnce() {
  absl::StatusOr<std::vector<Deployment>> deployments = store_.ListDeployments();
  if (!deployments.ok()) return;
  const CanaryThresholds thresholds = ThresholdsFromConfig(store_);
  for (const Deployment& d : *deployments) {
    if (d.spec.canary_version.empty()) continue;
    absl::StatusOr<std::map<std::string, VersionStats>> stats = RecentStats(store_, d.spec.model, thresholds.window);
    if (!stats.ok()) {
      spdlog::warn("canary analysis: cannot read the usage of {}: {}", d.name, stats.status().ToString());
      continue;
    }
    std::optional<std::string> verdict = JudgeCanary(d, *stats, thresholds);
    if (!verdict) continue;
    DeploymentSpec spec = d.spec;
    spec.canary_version.clear();
    spec.canary_percent = 0;
    // Only the generation judged: a person's change meanwhile wins.
    absl::StatusOr<Deployment> rolled =
        store_.UpdateDeploymentSpec(d.name, spec, d.generation, {.actor = "canary-analysis"});
    if (!rolled.ok()) {
      spdlog::warn("canary analysis: cannot roll back the canary of {}: {}", d.name, rolled.status().ToString());
      continue;
    }
    spdlog::warn("canary analysis: {}: {}; rolled back", d.name, *verdict);
    (void)store_.AppendEvent({.deployment = d.name, .kind = "rollback",
                              .message = *verdict + "; rolled back automatically", .actor = "canary-analysis"});
    if (options_.on_rollback) options_.on_rollback();
  }
}

}  // namespace triplane::control
