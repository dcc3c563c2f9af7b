#pragma once

// The CPU forward pass of the llama family over a batch of consecutive tokens of one
// sequence: prefill (many tokens, weights read once for all of them) and decode (one).

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "engine/model/kv_cache.h"
#include "engine/model/model.h"
#include "engine/runtime/worker_team.h"

namespace triplane::engine {

class ForwardPass {
 public:
  // `model` and `team` must outlive this object. Thread-compatible: one call at a time.
  ForwardPass(const Model& model, WorkerTeam& team, int64_t max_batch = 512);

  // Runs `tokens` at positions cache.size() ... cache.size() + tokens.size() - 1, appends
  // their keys and values to `cache`, and writes the logits of the last token to
  // `logits` ([vocab]) — or of every token when `logits` has tokens.size() × vocab
  // floats. Long inputs are processed in chunks of max_batch tokens.
  // InvalidArgument for out-of-range token ids, an overfull cache or a bad logits size.
  [[nodiscard]] absl::Status Forward(std::span<const int32_t> tokens, KvCache& cache,
                                     std::span<float> logits);

 private:
  absl::Status ForwardChunk(std::span<const int32_t> tokens, KvCache& cache, float* logits,
                            bool all_logits);
  // out[n, m.rows] = x[n, m.cols] · mᵀ, activations quantized for m's type first.
  void MatMul(const WeightMatrix& m, const float* x, int64_t n, float* out);
  void Attention(int64_t layer, int64_t n, int64_t start, KvCache& cache);

  // Tokens of a prompt whose attention scores one task computes together.
  static constexpr int64_t kAttentionSpan = 16;

  const Model& model_;
  const ModelConfig& config_;
  WorkerTeam& team_;
  const int64_t max_batch_;
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_;  // [max_batch, ...] scratch
  std::vector<std::byte> act_;                                 // quantized activations
  std::vector<std::byte> embd_row_;                            // a deinterleaved embedding row
  std::vector<float> scores_;      // [threads, kAttentionSpan, v_stride]
  std::vector<uint16_t> probs16_;  // [threads, kAttentionSpan, v_stride] f16
  std::vector<uint16_t> q16_;      // [threads, kAttentionSpan, head_dim] f16
  std::vector<float> rope_inv_freq_;                           // [rope_dims / 2]
  std::vector<float> rope_cos_, rope_sin_;                     // [tokens, rope_dims / 2]
};

}  // namespace triplane::engine
