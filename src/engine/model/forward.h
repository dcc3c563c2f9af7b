#pragma once

// The CPU forward pass of the llama family over a batch of token chunks from one or more
// sequences on a paged KV cache: every weight matrix is read once for all tokens of the
// batch (prefill chunks and decode tokens alike); attention runs per sequence over its
// own block table.

#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "engine/model/kv_cache.h"
#include "engine/model/model.h"
#include "engine/runtime/worker_team.h"

namespace triplane::engine {

// Consecutive tokens of one sequence in a batch.
struct SequenceChunk {
  int64_t start = 0;                // positions already cached; the chunk's first goes here
  int64_t count = 0;                // tokens (consecutive in ForwardBatch::tokens)
  std::span<const int32_t> blocks;  // the sequence's block table, covering start + count
};

struct ForwardBatch {
  std::span<const int32_t> tokens;           // every chunk's tokens, chunk after chunk
  std::span<const SequenceChunk> sequences;  // sum of counts == tokens.size()
  std::span<const int64_t> logit_rows;       // indices into tokens whose logits are wanted
  float* hidden = nullptr;  // optional [tokens][embedding]: final hidden states, normed
};

class ForwardPass {
 public:
  // `model` and `team` must outlive this object. Thread-compatible: one call at a time.
  ForwardPass(const Model& model, WorkerTeam& team, int64_t max_batch = 512);

  int64_t max_batch() const { return max_batch_; }

  // Runs every chunk at its positions, writes their keys and values into their blocks of
  // `cache`, and the logits of batch.logit_rows (in that order) to `logits`
  // ([logit_rows.size()][vocab]). Each output is bit-identical however the tokens are
  // split into batches and chunks (see docs/architecture.md). InvalidArgument for more
  // than max_batch tokens, out-of-range token ids, block tables that do not cover a chunk
  // or name a block outside the cache, or a bad logits size.
  [[nodiscard]] absl::Status Run(const ForwardBatch& batch, PagedKvCache& cache,
                                 std::span<float> logits);

  // One sequence on its own cache: runs `tokens` at positions cache.size() ... and
  // appends them, writing the logits of the last token to `logits` ([vocab]) -- or of
  // every token when `logits` has tokens.size() × vocab floats. Long inputs are processed
  // in chunks of max_batch tokens. InvalidArgument as Run, or for an overfull cache.
  [[nodiscard]] absl::Status Forward(std::span<const int32_t> tokens, KvCache& cache,
                                     std::span<float> logits);

 private:
  // out[n, m.rows] = x[n, m.cols] · mᵀ, activations quantized for m's type first.
  void MatMul(const WeightMatrix& m, const float* x, int64_t n, float* out);

  // One projection of several that read the same input (Q, K, V; gate, up).
  struct Projection {
    const WeightMatrix& m;
    float* out;  // [n, m.rows]
  };
  // MatMul of each projection with x[n, cols]. Matrices of one type, width and layout
  // share one activation quantization and one parallel pass over all their rows (a
  // decode step has many short phases: each saved one is a fork-join less); others run
  // one by one. The outputs are bit-identical either way.
  void MatMuls(std::initializer_list<Projection> projections, const float* x, int64_t n);

  // x[n, cols] quantized for `type` into act_; returns the activation row's bytes.
  int64_t QuantizeActivations(GgmlType type, const float* x, int64_t n, int64_t cols);
  void Attention(int64_t layer, const ForwardBatch& batch, PagedKvCache& cache);

  // Tokens of a chunk whose attention one task computes together.
  static constexpr int64_t kAttentionSpan = 16;
  struct Span {
    int64_t seq, first, count;  // chunk index, first token in the batch, tokens
  };
  // Attention of head h for the tokens of `span`, with thread `thread`'s scratch.
  void AttendHead(int64_t layer, const ForwardBatch& batch, PagedKvCache& cache, const Span& span, int64_t h,
                  int thread);

  const Model& model_;
  const ModelConfig& config_;
  WorkerTeam& team_;
  const int64_t max_batch_;
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_;  // [max_batch, ...] scratch
  std::vector<std::byte> act_;                                 // quantized activations
  std::vector<uint16_t> k16_;                                  // [max_batch, kv_dim]: keys in f16
  std::vector<std::byte> embd_row_;                            // a deinterleaved embedding row
  std::vector<int64_t> positions_;                             // [tokens]
  std::vector<int64_t> token_seq_;                             // [tokens]: chunk index
  std::vector<Span> spans_;
  int64_t context_stride_ = 0;     // scores / pointer row length: the longest context
  std::vector<float> scores_;      // [threads, kAttentionSpan, context_stride]
  std::vector<float> q32_;         // [threads, kAttentionSpan, head_dim], rounded to f16
  std::vector<const uint16_t*> v_rows_;    // [threads, context_stride]
  std::vector<const uint16_t*> k_blocks_;  // [threads, context_stride / kBlockTokens]
  std::vector<int64_t> lengths_;   // [threads, kAttentionSpan]
  // An 8-bit cache's head parts of key and value blocks and their scales, as k_blocks_.
  std::vector<const uint8_t*> k8_blocks_;
  std::vector<const int8_t*> v8_blocks_;
  std::vector<const float*> k_scales_, v_scales_;
  std::vector<float> rope_inv_freq_;        // [rope_dims / 2]
  std::vector<float> rope_cos_, rope_sin_;  // [tokens, rope_dims / 2]
};

}  // namespace triplane::engine
