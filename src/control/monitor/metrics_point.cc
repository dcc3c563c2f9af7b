#include "control/monitor/metrics_point.h"

#include <cmath>
#include <utility>

namespace triplane::control {

nlohmann::json ToJson(const MetricsPoint& point) {
  nlohmann::json out = nlohmann::json::object();
  out["t"] = static_cast<double>(absl::ToUnixMillis(point.time)) / 1000.0;
  if (point.up.has_value()) out["up"] = *point.up ? 1 : 0;
  const std::pair<const char*, double> values[] = {
      {"requests_per_second", point.requests_per_second},
      {"latency_p50_seconds", point.latency_p50_seconds},
      {"latency_p99_seconds", point.latency_p99_seconds},
      {"ttft_p50_seconds", point.ttft_p50_seconds},
      {"ttft_p99_seconds", point.ttft_p99_seconds},
      {"tpot_p50_seconds", point.tpot_p50_seconds},
      {"tokens_per_second", point.tokens_per_second},
      {"generation_tokens_per_second", point.generation_tokens_per_second},
      {"running", point.running},
      {"waiting", point.waiting},
      {"kv_cache_usage", point.kv_cache_usage},
      {"cpu_percent", point.cpu_percent},
      {"rss_bytes", point.rss_bytes},
      {"gpu_utilization_percent", point.gpu_utilization_percent},
      {"gpu_memory_bytes", point.gpu_memory_bytes},
  };
  for (const auto& [name, value] : values) {
    out[name] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
  }
  return out;
}

}  // namespace triplane::control
