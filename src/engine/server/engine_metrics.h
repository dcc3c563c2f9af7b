#pragma once

// The engine process's Prometheus metrics, named after vLLM's with the project's
// `triplane_` prefix (docs/architecture.md, "Metric names"): scheduler state read from
// Engine::Stats() at scrape time, and request-level counters and latency histograms the
// API layer records.

#include <cstdint>
#include <memory>
#include <string_view>

#include "common/metrics.h"
#include "engine/runtime/engine.h"

namespace triplane::engine::server {

// Thread-safe. Registers its families in the registry on construction.
class EngineMetrics {
 public:
  explicit EngineMetrics(common::MetricsRegistry& registry);
  // Detaches the engine (scrapes then read zeros).
  ~EngineMetrics();

  EngineMetrics(const EngineMetrics&) = delete;
  EngineMetrics& operator=(const EngineMetrics&) = delete;

  // The engine whose Stats() the scheduler gauges and counters read; null detaches.
  // REQUIRES: `engine` stays alive until it is detached (here or by the destructor).
  // Also observes the engine's steps (iteration sizes).
  void AttachEngine(Engine* engine);

  // A choice produced its first token `seconds` after the request arrived; its prompt
  // had `prompt_tokens` tokens.
  void ObserveFirstToken(double seconds, int64_t prompt_tokens);
  // A later token, `seconds` after the choice's previous one.
  void ObserveNextToken(double seconds);
  // A choice ended with `finish_reason` ("stop", "length", "abort", "error") after
  // `seconds` from the request's arrival.
  void ObserveFinished(std::string_view finish_reason, double seconds);
  // An engine request waited `seconds` in the queue before it was admitted.
  void ObserveQueueTime(double seconds);

 private:
  // Shared with the registry's callbacks, which outlive this object in the process-wide
  // registry: they read zeros once the engine is detached.
  struct StatsSource;
  std::shared_ptr<StatsSource> source_;
  common::Counter& prompt_tokens_;
  common::Counter& generation_tokens_;
  common::Family<common::Counter>& request_success_;
  common::Histogram& time_to_first_token_;
  common::Histogram& time_per_output_token_;
  common::Histogram& e2e_latency_;
  common::Histogram& queue_time_;
  common::Histogram& iteration_tokens_;
  Engine* attached_ = nullptr;
};

}  // namespace triplane::engine::server
