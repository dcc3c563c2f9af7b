#pragma once

// The serving core of one engine process: continuous batching over a paged KV cache with
// automatic prefix caching, in the manner of vLLM.
//
// Requests are token ids in, token ids out (templating, tokenization, detokenization and
// stop strings belong to the API layer, engine/server). One engine thread runs steps:
// every step gives each running sequence one decode token and fills the rest of the
// token budget (max_batch_tokens) with prompt chunks (chunked prefill), runs one forward
// pass over all of them (every weight read once per step), samples, and reports each new
// token through the request's callback. KV memory is paged in blocks of kBlockTokens;
// full prompt blocks are shared between requests with the same prefix (hash chain,
// reference counts, LRU eviction of unreferenced cached blocks); when a decode needs a
// block and none is free, the most recently admitted sequence is preempted (its blocks
// freed, recomputed later). Thread safety: Submit, Cancel, Stats and Embed may be called
// from any thread; callbacks run on the engine thread and must not block.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/model/kv_cache.h"
#include "engine/model/model.h"
#include "engine/sampling/sampler.h"

namespace triplane::engine {

struct EngineConfig {
  int threads = 1;                  // compute threads
  int64_t ctx = 4096;               // most tokens (prompt + generated) per sequence
  int64_t kv_memory_bytes = 0;      // KV cache size; 0 = room for max_seqs full contexts
  KvType kv_type = KvType::kF16;    // what the KV cache stores (kv_cache.h)
  int64_t max_batch_tokens = 512;   // tokens per step (decodes + prompt chunks)
  int64_t max_seqs = 64;            // sequences running at once
  int64_t max_waiting = 256;        // queued requests beyond which Submit refuses
  std::vector<int32_t> eog_tokens;  // tokens that end generation (the vocabulary's eog set)
};

enum class FinishReason {
  kNone,       // not finished
  kStop,       // an end-of-generation token (not with ignore_eos) or a stop token id
  kLength,     // max_tokens generated, or the context is full
  kCancelled,  // Cancel() or engine shutdown
  kError,      // see TokenEvent::error
};

struct GenerationRequest {
  std::vector<int32_t> prompt;       // token ids, at least one
  SamplingParams sampling;
  int64_t max_tokens = 16;           // tokens to generate at most (>= 1)
  bool ignore_eos = false;           // keep going past end-of-generation tokens
  std::vector<int32_t> stop_token_ids;  // extra tokens that finish with kStop
  int top_logprobs = -1;             // -1: no logprobs; 0..20: chosen token's + k best
};

// One generated token, or the end of a request (finish != kNone; `token` is then -1
// when the request ended without a new token, e.g. cancelled).
struct TokenEvent {
  int32_t token = -1;
  float logprob = 0.0f;                              // when top_logprobs >= 0
  std::vector<std::pair<int32_t, float>> top;        // k best, most likely first
  FinishReason finish = FinishReason::kNone;
  absl::Status error;                                // when finish == kError
  int64_t prompt_tokens = 0;         // set on the final event
  int64_t cached_prompt_tokens = 0;  // prompt tokens served from the prefix cache
  int64_t generated_tokens = 0;      // set on the final event
  double queue_seconds = -1;         // on a request's first event: Submit to admission
};

struct EngineStats {
  int64_t running = 0;              // sequences in the batch
  int64_t waiting = 0;              // queued requests
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;       // referenced by a sequence
  int64_t kv_blocks_cached = 0;     // unreferenced, kept for prefix reuse
  int64_t prefix_cache_queries = 0;     // prompt tokens looked up
  int64_t prefix_cache_hits = 0;        // of which found cached
  int64_t preemptions = 0;
  int64_t prompt_tokens = 0;            // computed (not cached) prompt tokens, total
  int64_t generated_tokens = 0;         // total
  int64_t steps = 0;
};

class Engine {
 public:
  using RequestId = uint64_t;
  using Callback = std::function<void(const TokenEvent&)>;

  // Sizes the KV cache, starts the engine thread. InvalidArgument for unusable config.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Engine>> Create(const Model& model,
                                                                       EngineConfig config);
  // Cancels everything still running (callbacks get kCancelled) and joins the thread.
  ~Engine();

  // Queues a request. InvalidArgument when the prompt is empty, has an id outside the
  // vocabulary, or prompt + max_tokens exceeds ctx; ResourceExhausted when max_waiting
  // requests are already queued. The callback receives every token; the last event has
  // finish != kNone (with the last token, or token -1 when cancelled or failed), and
  // nothing comes after it.
  [[nodiscard]] absl::StatusOr<RequestId> Submit(GenerationRequest request, Callback callback);

  // Stops a request (no-op when it has finished); its KV blocks are freed at the next
  // step and its callback gets a final kCancelled event.
  void Cancel(RequestId id);

  // The final hidden state of `tokens` after the output norm, mean-pooled over tokens and
  // L2-normalised ([embedding]). Runs between steps; blocks the caller.
  [[nodiscard]] absl::StatusOr<std::vector<float>> Embed(std::span<const int32_t> tokens);

  EngineStats Stats() const;

  // Called on the engine thread after every step with the tokens it computed (for an
  // iteration-size histogram); must not block. Replaces any previous observer.
  void SetStepObserver(std::function<void(int64_t tokens)> observer);
  const Model& model() const;
  const EngineConfig& config() const;

 private:
  class Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace triplane::engine
