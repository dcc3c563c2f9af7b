#include "gateway/usage_shipper.h"

#include "common/metrics.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace triplane::gateway {
namespace {

common::Counter& Dropped() {
  static common::Counter& counter = common::MetricsRegistry::Default()
      .AddCounter("triplane_usage_dropped_total", "Usage rows dropped because the write queue was full.")
      .Get();
  return counter;
}

}  // namespace

nlohmann::json UsageRow(const UsageEvent& event) {
  const ForwardResult& r = event.result;
  return {{"request_id", event.request_id},
          {"time", absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone())},
          {"key_id", event.key_id},
          {"team", event.team},
          {"model", event.model},
          {"instance", event.instance},
          {"version", r.version},
          {"deployment", r.deployment},
          {"endpoint", event.endpoint},
          {"status", r.status},
          {"stream", r.stream},
          {"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"cached_tokens", r.cached_tokens},
          {"latency_seconds", r.latency_seconds},
          {"ttft_seconds", r.ttft_seconds},
          {"cost_micros", event.cost_micros},
          {"error", r.error}};
}

UsageShipper::UsageShipper(UsageShipperOptions options)
    : options_(std::move(options)), client_({.request_timeout = std::chrono::seconds(30)}) {
  Dropped();
  thread_ = std::thread([this] { Loop(); });
}

UsageShipper::~UsageShipper() { Stop(); }

void UsageShipper::Record(const UsageEvent& event) {
  nlohmann::json row = UsageRow(event);
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= options_.capacity) {
    Dropped().Inc();
    return;
  }
  queue_.push_back(std::move(row));
}

void UsageShipper::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void UsageShipper::Loop() {
  absl::Time stop_deadline = absl::InfiniteFuture();
  while (true) {
    nlohmann::json batch = nlohmann::json::array();
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || queue_.size() >= options_.batch;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), options_.interval);
      if (stopping_ && stop_deadline == absl::InfiniteFuture()) stop_deadline = absl::Now() + options_.stop_timeout;
      for (size_t i = 0; i < queue_.size() && i < options_.batch; ++i) batch.push_back(queue_[i]);
      if (batch.empty() && stopping_) return;
    }
    if (batch.empty()) continue;
    common::HttpClientRequest request{.method = common::HttpMethod::kPost,
                                      .url = options_.control_url + "/admin/v1/usage",
                                      .body = nlohmann::json{{"records", batch}}.dump()};
    request.headers.Set("authorization", "Bearer " + options_.admin_key);
    request.headers.Set("content-type", "application/json");
    absl::StatusOr<common::HttpResponse> response = client_.Send(std::move(request));
    const bool sent = response.ok() && response->status == 200;
    // A 400 will never succeed: drop those rows rather than block every later one.
    const bool refused = response.ok() && response->status == 400;
    absl::MutexLock lock(&mu_);
    if (sent || refused) {
      if (refused) {
        spdlog::error("usage: the control plane refused {} rows: {}", batch.size(), response->body);
        Dropped().Inc(static_cast<double>(batch.size()));
      }
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(batch.size()));
      continue;
    }
    spdlog::warn("usage: cannot send {} rows to {} yet ({})", batch.size(), options_.control_url,
                 response.ok() ? fmt::format("HTTP {}", response->status) : std::string(response.status().message()));
    if (stopping_ && absl::Now() > stop_deadline) {
      spdlog::error("usage: {} rows not delivered at shutdown", queue_.size());
      Dropped().Inc(static_cast<double>(queue_.size()));
      return;
    }
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Seconds(1));
  }
}

}  // namespace triplane::gateway
