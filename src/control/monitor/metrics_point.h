#pragma once

// One point of a monitored time series: what an engine instance (or a whole deployment)
// did during one scrape interval. The admin API serves these as JSON (docs/api.md,
// "Metrics"); values that are unknown are NaN here and null in JSON.

#include <limits>
#include <optional>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace triplane::control {

inline constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

struct MetricsPoint {
  absl::Time time;
  std::optional<bool> up;  // instances only: whether this round's scrape succeeded
  // Rates over the interval, from counter differences.
  double requests_per_second = kUnknown;             // finished requests (choices)
  double tokens_per_second = kUnknown;               // prompt + generated
  double generation_tokens_per_second = kUnknown;
  // Quantiles of the observations made during the interval (unknown without any).
  double latency_p50_seconds = kUnknown;             // arrival to last token
  double latency_p99_seconds = kUnknown;
  double ttft_p50_seconds = kUnknown;                // time to first token
  double ttft_p99_seconds = kUnknown;
  double tpot_p50_seconds = kUnknown;                // time per output token
  // Gauges at the end of the interval.
  double running = kUnknown;                         // sequences in the batch
  double waiting = kUnknown;                         // requests queued
  double kv_cache_usage = kUnknown;                  // 0..1
  double cpu_percent = kUnknown;                     // of one core, over the interval
  double rss_bytes = kUnknown;
  double gpu_utilization_percent = kUnknown;         // NVML, when the process uses a GPU
  double gpu_memory_bytes = kUnknown;
};

// {"t": unix seconds, "up": 0|1 (instances only), "requests_per_second": …} with null
// for unknown values.
nlohmann::json ToJson(const MetricsPoint& point);

}  // namespace triplane::control
