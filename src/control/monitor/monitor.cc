#include "control/monitor/monitor.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "common/http_client.h"
#include "common/strings.h"
#include "control/monitor/gpu_usage.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::control {
namespace {

constexpr absl::Duration kMinInterval = absl::Seconds(1);

absl::Duration ScrapeTimeout(const MonitorOptions& options) {
  return std::max(absl::Milliseconds(100), std::min(options.scrape_timeout, options.interval));
}

std::chrono::milliseconds Millis(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

// The replies of one round's scrapes. Shared with the HTTP client's callbacks, which may
// outlive the round when a reply comes after the deadline.
struct RoundReplies {
  absl::Mutex mu;
  std::vector<std::optional<std::string>> bodies ABSL_GUARDED_BY(mu);  // 200 bodies
  std::vector<absl::Time> times ABSL_GUARDED_BY(mu);
  size_t pending ABSL_GUARDED_BY(mu) = 0;
};

}  // namespace

absl::StatusOr<MonitorTargets> TargetsFromStore(Store& store) {
  MonitorTargets targets;
  absl::StatusOr<std::vector<Deployment>> deployments = store.ListDeployments();
  if (!deployments.ok()) return deployments.status();
  for (const Deployment& d : *deployments) {
    targets.deployments.push_back({.deployment = d.name, .model = d.spec.model, .version = d.spec.version});
  }
  absl::StatusOr<std::vector<Instance>> instances = store.ListInstances("");
  if (!instances.ok()) return instances.status();
  for (const Instance& i : *instances) {
    if ((i.state != InstanceState::kReady && i.state != InstanceState::kDraining) || i.port <= 0) continue;
    targets.instances.push_back(
        {.labels = {.deployment = i.deployment, .model = i.model, .version = i.version, .instance = i.id},
         .url = fmt::format("http://{}:{}", i.host.empty() ? "127.0.0.1" : i.host, i.port),  // as routed
         .pid = i.provider == "local" ? i.pid : 0});
  }
  return targets;
}

Monitor::Monitor(MonitorOptions options)
    : options_(std::move(options)),
      history_({.interval = std::max(options_.interval, kMinInterval), .retention = options_.retention}),
      client_(std::make_unique<common::HttpClient>(common::HttpClientOptions{
          .connect_timeout = Millis(ScrapeTimeout(options_)),
          .request_timeout = Millis(ScrapeTimeout(options_)),
          .max_idle_per_host = 2,
          .max_response_bytes = options_.max_scrape_bytes})) {
  if (options_.gpu) {
    gpu_ = GpuUsageReader::Open();
    if (gpu_ != nullptr) spdlog::info("monitor: NVML found {} GPU(s)", gpu_->device_count());
  }
}

Monitor::~Monitor() { Stop(); }

void Monitor::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Loop(); });
}

void Monitor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Monitor::SetInterval(absl::Duration interval) {
  history_.set_interval(std::max(interval, kMinInterval));
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

void Monitor::Loop() {
  while (true) {
    const absl::Time start = absl::Now();
    ScrapeOnce();
    absl::MutexLock lock(&mu_);
    // Sleeps until the next round, or until the interval changes (then the new interval
    // counts from this round's start).
    while (!stop_) {
      wake_ = false;
      const absl::Time next = start + history_.interval();
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || wake_; };
      if (!mu_.AwaitWithDeadline(absl::Condition(&woken), next)) break;
    }
    if (stop_) return;
  }
}

void Monitor::ScrapeOnce() {
  absl::MutexLock round(&round_mu_);
  const absl::Time t = absl::Now();
  absl::StatusOr<MonitorTargets> targets = options_.targets();
  if (!targets.ok()) {
    // The store may be briefly unreachable; say so now and then, not every round.
    if (t - targets_warned_ > absl::Minutes(1)) {
      spdlog::warn("monitor: cannot list targets: {}", common::ToStd(targets.status().message()));
      targets_warned_ = t;
    }
    return;
  }
  std::vector<InstanceScrape> observations = Scrape(targets->instances);
  for (const InstanceScrape& o : observations) {
    const bool up = o.metrics != nullptr;
    auto [it, inserted] = was_up_.try_emplace(o.labels.instance, up);
    if (!inserted && it->second != up) {
      spdlog::info("monitor: instance {} of {} is {}", o.labels.instance, o.labels.deployment,
                   up ? "scraped again" : "not answering /metrics");
    }
    it->second = up;
  }
  std::erase_if(was_up_, [&observations](const auto& entry) {
    return std::none_of(observations.begin(), observations.end(),
                        [&entry](const InstanceScrape& o) { return o.labels.instance == entry.first; });
  });
  history_.Record(t, targets->deployments, std::move(observations));
}

std::vector<InstanceScrape> Monitor::Scrape(const std::vector<MonitorTarget>& targets) {
  auto replies = std::make_shared<RoundReplies>();
  {
    absl::MutexLock lock(&replies->mu);
    replies->bodies.resize(targets.size());
    replies->times.resize(targets.size(), absl::InfinitePast());
    replies->pending = targets.size();
  }
  const absl::Duration timeout = ScrapeTimeout(options_);
  for (size_t i = 0; i < targets.size(); ++i) {
    common::HttpClientRequest request{.url = targets[i].url + "/metrics", .timeout = Millis(timeout)};
    request.headers.Set("accept", "text/plain");
    client_->SendAsync(std::move(request), [replies, i](absl::StatusOr<common::HttpResponse> response) {
      absl::MutexLock lock(&replies->mu);
      if (response.ok() && response->status == 200) replies->bodies[i] = std::move(response->body);
      replies->times[i] = absl::Now();
      --replies->pending;
    });
  }
  std::vector<std::optional<std::string>> bodies;
  std::vector<absl::Time> times;
  {
    absl::MutexLock lock(&replies->mu);
    // The client enforces the timeout; the extra second only guards against a reply
    // that never comes, so that a round always ends.
    auto done = [&replies]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(replies->mu) { return replies->pending == 0; };
    replies->mu.AwaitWithTimeout(absl::Condition(&done), timeout + absl::Seconds(1));
    bodies = replies->bodies;
    times = replies->times;
  }

  std::map<int64_t, GpuUsage> gpu;
  if (gpu_ != nullptr) gpu = gpu_->Read();
  std::vector<InstanceScrape> observations;
  observations.reserve(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    InstanceScrape& o = observations.emplace_back();
    o.labels = targets[i].labels;
    o.time = times[i] == absl::InfinitePast() ? absl::Now() : times[i];
    if (bodies[i].has_value()) {
      auto metrics = std::make_shared<ScrapedMetrics>(ParsePrometheusText(*bodies[i]));
      if (metrics->rejected_lines > 0) {
        spdlog::debug("monitor: instance {}: {} invalid line(s) in /metrics skipped; first: {}",
                      o.labels.instance, metrics->rejected_lines, metrics->first_error);
      }
      o.metrics = std::move(metrics);
    }
    if (targets[i].pid > 0) {
      o.process = common::ReadProcessUsage(targets[i].pid);
      if (auto it = gpu.find(targets[i].pid); it != gpu.end()) o.gpu = it->second;
    }
  }
  return observations;
}

std::function<absl::Status(const std::optional<nlohmann::json>&)> MonitorIntervalHandler(
    Monitor& monitor, absl::Duration initial) {
  return [&monitor, initial](const std::optional<nlohmann::json>& value) -> absl::Status {
    if (!value.has_value()) {
      monitor.SetInterval(initial);
      return absl::OkStatus();
    }
    if (!value->is_number() || !(value->get<double>() >= 1 && value->get<double>() <= 3600)) {
      return absl::InvalidArgumentError("monitor.interval must be a number of seconds from 1 to 3600");
    }
    monitor.SetInterval(absl::Seconds(value->get<double>()));
    return absl::OkStatus();
  };
}

}  // namespace triplane::control
