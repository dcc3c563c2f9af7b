#include "control/autoscale/autoscaler.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include "common/strings.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::control {
namespace {

// Samples are kept for two stable windows: enough to tell that one is covered.
constexpr int kWindowsKept = 2;

// The deployment's demand from the monitor's latest point, when it is recent.
std::optional<double> MonitorDemand(const DeploymentMetricsSummary* summary, AutoscaleMetric metric,
                                    int32_t ready, absl::Duration interval, absl::Time now) {
  if (summary == nullptr || !summary->latest || now - summary->latest->time > 3 * interval) {
    return std::nullopt;
  }
  const MetricsPoint& p = *summary->latest;
  const double value = metric == AutoscaleMetric::kWaiting   ? p.waiting
                       : metric == AutoscaleMetric::kKvCache ? p.kv_cache_usage * ready
                                                             : p.running + p.waiting;
  if (std::isnan(value)) return std::nullopt;
  return value;
}

}  // namespace

Autoscaler::Autoscaler(Store& store, const MetricsHistory& history, AutoscalerOptions options)
    : store_(store), history_(history), options_(std::move(options)) {}

Autoscaler::~Autoscaler() { Stop(); }

void Autoscaler::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Loop(); });
}

void Autoscaler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Autoscaler::Wake(const std::string& deployment) {
  absl::MutexLock lock(&mu_);
  woken_[deployment] = absl::Now();
  wake_ = true;
}

void Autoscaler::Loop() {
  while (true) {
    const absl::Time start = absl::Now();
    RunOnce();
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || wake_; };
    mu_.AwaitWithDeadline(absl::Condition(&ready), start + options_.period);
    if (stop_) return;
    wake_ = false;
  }
}

void Autoscaler::RunOnce() {
  absl::MutexLock round(&round_mu_);
  absl::StatusOr<std::vector<Deployment>> deployments = store_.ListDeployments();
  if (!deployments.ok()) {
    spdlog::warn("autoscaler: cannot list deployments: {}",
                 common::ToStd(deployments.status().message()));
    return;
  }
  const absl::Time now = absl::Now();
  std::map<std::string, double> in_flight;  // by deployment, over its ready instances
  if (options_.outstanding) {
    absl::StatusOr<std::vector<Instance>> instances = store_.ListInstances("");
    if (!instances.ok()) {
      spdlog::warn("autoscaler: cannot list instances: {}",
                   common::ToStd(instances.status().message()));
      return;
    }
    for (const Instance& instance : *instances) {
      if (instance.state != InstanceState::kReady) continue;
      in_flight[instance.deployment] += static_cast<double>(options_.outstanding(instance.id));
    }
  }
  std::map<std::string, DeploymentMetricsSummary> monitored;
  for (DeploymentMetricsSummary& summary : history_.Deployments()) {
    monitored[summary.labels.deployment] = std::move(summary);
  }
  std::map<std::string, absl::Time> woken;
  {
    absl::MutexLock lock(&mu_);
    std::erase_if(woken_, [&](const auto& entry) { return now - entry.second > options_.wake_hold; });
    woken = woken_;
  }
  std::set<std::string> autoscaled;
  for (const Deployment& d : *deployments) {
    if (!d.spec.autoscale) continue;
    autoscaled.insert(d.name);
    const AutoscaleMetric metric = d.spec.autoscale->metric;
    const auto summary = monitored.find(d.name);
    std::optional<double> demand =
        MonitorDemand(summary == monitored.end() ? nullptr : &summary->second, metric,
                      d.status.ready_replicas, history_.interval(), now);
    if (metric == AutoscaleMetric::kInFlight && options_.outstanding) {
      // The in-process gateway's count is the fresher; the engines' own count (when
      // recent) also sees requests that came through other gateways.
      const auto it = in_flight.find(d.name);
      demand = std::max(demand.value_or(0), it == in_flight.end() ? 0 : it->second);
    }
    // No instance, no load on one (a wake-up says otherwise).
    if (!demand && d.status.ready_replicas == 0) demand = 0;
    Decide(d, now, demand, woken.contains(d.name));
  }
  std::erase_if(tracked_, [&](const auto& entry) { return !autoscaled.contains(entry.first); });
}

void Autoscaler::Decide(const Deployment& d, absl::Time now, std::optional<double> demand,
                        bool woken) {
  const AutoscaleSpec& spec = *d.spec.autoscale;
  Tracked& tracked = tracked_[d.name];
  if (demand) tracked.samples.push_back({.time = now, .value = *demand});
  const absl::Duration kept = kWindowsKept * absl::Seconds(spec.stable_window_seconds);
  while (!tracked.samples.empty() && tracked.samples.front().time < now - kept) {
    tracked.samples.pop_front();
  }
  AutoscaleState state = tracked.state;
  const AutoscaleDecision decision = DecideReplicas({.spec = &spec,
                                                     .now = now,
                                                     .replicas = d.spec.replicas,
                                                     .ready_replicas = d.status.ready_replicas,
                                                     .samples = &tracked.samples,
                                                     .woken = woken},
                                                    state);
  if (decision.replicas == d.spec.replicas) {
    tracked.state = state;
    return;
  }
  DeploymentSpec scaled = d.spec;
  scaled.replicas = decision.replicas;
  absl::StatusOr<Deployment> written =
      store_.UpdateDeploymentSpec(d.name, scaled, d.generation, {.actor = "autoscaler"});
  if (!written.ok()) {
    // Aborted: someone changed the deployment since the read; the next round sees it.
    if (!absl::IsAborted(written.status())) {
      spdlog::warn("autoscaler: cannot scale {}: {}", d.name, common::ToStd(written.status().message()));
    }
    return;
  }
  tracked.state = state;
  const std::string message =
      fmt::format("scaled {} → {}: {}", d.spec.replicas, decision.replicas, decision.reason);
  spdlog::info("autoscaler: {} {}", d.name, message);
  absl::StatusOr<DeploymentEvent> event = store_.AppendEvent(
      {.deployment = d.name, .kind = "scaled", .message = message, .actor = "autoscaler"});
  if (!event.ok()) {
    spdlog::warn("autoscaler: cannot record the event of {}: {}", d.name,
                 common::ToStd(event.status().message()));
  }
  if (options_.on_scaled) options_.on_scaled();
}

}  // namespace triplane::control
