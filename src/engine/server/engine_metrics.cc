#include "engine/server/engine_metrics.h"

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace triplane::engine::server {

struct EngineMetrics::StatsSource {
  absl::Mutex mu;
  const Engine* engine ABSL_GUARDED_BY(mu) = nullptr;

  EngineStats Read() {
    absl::MutexLock lock(&mu);
    return engine != nullptr ? engine->Stats() : EngineStats{};
  }
};

namespace {

std::vector<double> TokenLatencyBuckets() {
  // Inter-token latencies: 1 ms .. 10 s (vLLM's TPOT buckets span 10 ms .. 80 s).
  return {0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15,
          0.2,   0.3,    0.4,   0.5,    0.75, 1.0,   2.5,  5.0,   7.5, 10.0};
}

}  // namespace

EngineMetrics::EngineMetrics(common::MetricsRegistry& registry)
    : source_(std::make_shared<StatsSource>()),
      prompt_tokens_(registry
                         .AddCounter("triplane_prompt_tokens_total",
                                     "Prompt tokens of requests that started generating "
                                     "(prefix-cached ones included).")
                         .Get()),
      generation_tokens_(
          registry.AddCounter("triplane_generation_tokens_total", "Tokens generated.").Get()),
      request_success_(registry.AddCounter("triplane_request_success_total",
                                           "Finished choices (engine requests), by finish reason.",
                                           {"finished_reason"})),
      time_to_first_token_(registry
                               .AddHistogram("triplane_time_to_first_token_seconds",
                                             "From a request's arrival to its first token.", {},
                                             common::LatencyBucketsSeconds())
                               .Get()),
      time_per_output_token_(registry
                                 .AddHistogram("triplane_time_per_output_token_seconds",
                                               "Time between consecutive tokens of a choice.", {},
                                               TokenLatencyBuckets())
                                 .Get()),
      e2e_latency_(registry
                       .AddHistogram("triplane_e2e_request_latency_seconds",
                                     "From a request's arrival to its last token.", {},
                                     common::LatencyBucketsSeconds())
                       .Get()),
      queue_time_(registry
                      .AddHistogram("triplane_request_queue_time_seconds",
                                    "Time an engine request waited before it joined the batch.", {},
                                    common::LatencyBucketsSeconds())
                      .Get()),
      iteration_tokens_(registry
                            .AddHistogram("triplane_iteration_tokens",
                                          "Tokens computed per scheduler step (decodes plus prompt chunks).",
                                          {}, {1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192})
                            .Get()) {
  // Every finish reason is on the page from the start, so rates need no special case.
  for (std::string_view reason : {"stop", "length", "abort", "error"})
    request_success_.WithLabels({reason});
  using common::MetricType;
  auto stat = [source = source_](auto field) {
    return [source, field]() -> double { return static_cast<double>(source->Read().*field); };
  };
  registry.AddCallback("triplane_num_requests_running", "Sequences in the running batch.",
                       MetricType::kGauge, stat(&EngineStats::running));
  registry.AddCallback("triplane_num_requests_waiting", "Requests queued for the batch.",
                       MetricType::kGauge, stat(&EngineStats::waiting));
  registry.AddCallback("triplane_kv_cache_usage_perc",
                       "Fraction of KV cache blocks held by sequences (0..1; cached "
                       "unreferenced blocks count as free).",
                       MetricType::kGauge, [source = source_]() -> double {
                         const EngineStats stats = source->Read();
                         return stats.kv_blocks_total > 0
                                    ? static_cast<double>(stats.kv_blocks_used) /
                                          static_cast<double>(stats.kv_blocks_total)
                                    : 0.0;
                       });
  registry.AddCallback("triplane_prefix_cache_queries_total",
                       "Prompt tokens looked up in the prefix cache.", MetricType::kCounter,
                       stat(&EngineStats::prefix_cache_queries));
  registry.AddCallback("triplane_prefix_cache_hits_total",
                       "Prompt tokens found in the prefix cache.", MetricType::kCounter,
                       stat(&EngineStats::prefix_cache_hits));
  registry.AddCallback("triplane_num_preemptions_total",
                       "Sequences preempted (freed and recomputed later) for lack of KV blocks.",
                       MetricType::kCounter, stat(&EngineStats::preemptions));
  registry.AddCallback("triplane_engine_steps_total", "Scheduler steps (forward passes) run.",
                       MetricType::kCounter, stat(&EngineStats::steps));
}

EngineMetrics::~EngineMetrics() { AttachEngine(nullptr); }

void EngineMetrics::AttachEngine(Engine* engine) {
  if (attached_ != nullptr) attached_->SetStepObserver(nullptr);
  attached_ = engine;
  if (engine != nullptr) {
    engine->SetStepObserver([&histogram = iteration_tokens_](int64_t tokens) {
      histogram.Observe(static_cast<double>(tokens));
    });
  }
  absl::MutexLock lock(&source_->mu);
  source_->engine = engine;
}

void EngineMetrics::ObserveQueueTime(double seconds) { queue_time_.Observe(seconds); }

void EngineMetrics::ObserveFirstToken(double seconds, int64_t prompt_tokens) {
  time_to_first_token_.Observe(seconds);
  prompt_tokens_.Inc(static_cast<double>(prompt_tokens));
  generation_tokens_.Inc();
}

void EngineMetrics::ObserveNextToken(double seconds) {
  time_per_output_token_.Observe(seconds);
  generation_tokens_.Inc();
}

void EngineMetrics::ObserveFinished(std::string_view finish_reason, double seconds) {
  request_success_.WithLabels({finish_reason}).Inc();
  e2e_latency_.Observe(seconds);
}

}  // namespace triplane::engine::server
