#include "engine/model/forward.h"

#include <algorithm>
#include <cmath>

#include "common/status_macros.h"
#include "engine/kernels/cpu/interleaved.h"
#include "engine/kernels/cpu/kv_q8.h"
#include "engine/kernels/cpu/matmul.h"
#include "engine/kernels/cpu/quant.h"
#include "fmt/format.h"

namespace triplane::engine {

namespace {

// out[i] = x[i] / sqrt(mean(x²) + eps) * w[i]; the sum in double, as ggml does.
void RmsNorm(const float* x, const float* w, int64_t n, double eps, float* out) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / n) + static_cast<float>(eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

// Asks for [p, p + bytes) to be brought into the cache ahead of use.
void Prefetch(const void* p, int64_t bytes) {
  const auto* c = static_cast<const char*>(p);
  for (int64_t line = 0; line < bytes; line += 64) __builtin_prefetch(c + line, 0, 3);
}

}  // namespace

ForwardPass::ForwardPass(const Model& model, WorkerTeam& team, int64_t max_batch)
    : model_(model), config_(model.config()), team_(team), max_batch_(std::max<int64_t>(1, max_batch)) {
  const ModelConfig& c = config_;
  const auto batch = static_cast<size_t>(max_batch_);
  x_.resize(batch * c.embedding);
  xn_.resize(batch * std::max(c.embedding, c.q_dim()));
  q_.resize(batch * std::max(c.q_dim(), c.embedding));  // also the projections' output
  k_.resize(batch * c.kv_dim());
  v_.resize(batch * c.kv_dim());
  k16_.resize(batch * c.kv_dim());
  attn_.resize(batch * c.q_dim());
  gate_.resize(batch * c.ffn);
  up_.resize(batch * c.ffn);
  const int64_t widest = std::max({c.embedding, c.q_dim(), c.ffn});
  act_.resize(batch * static_cast<size_t>(widest) * sizeof(float));
  // theta_i = base^(-2i/n_rot), iterated in float like ggml so positions agree.
  const float theta_scale = std::pow(static_cast<float>(c.rope_freq_base), -2.0f / static_cast<float>(c.rope_dims));
  float theta = 1.0f;
  for (int64_t i = 0; i < c.rope_dims / 2; ++i) {
    rope_inv_freq_.push_back(theta);
    theta *= theta_scale;
  }
}

int64_t ForwardPass::QuantizeActivations(GgmlType type, const float* x, int64_t n, int64_t cols) {
  const int64_t act_row = cpu::RowBytes(cpu::ActivationType(type), cols);
  std::byte* act = act_.data();
  auto quantize = [&](int64_t row) {
    cpu::QuantizeActivations(type, x + row * cols, cols, act + row * act_row);
  };
  // A decode step's few rows take a few microseconds: less than waking the team.
  constexpr int64_t kInlineElements = 32 * 1024;
  if (n * cols <= kInlineElements) {
    for (int64_t row = 0; row < n; ++row) quantize(row);
  } else {
    team_.Run(n, [&](int64_t row, int) { quantize(row); });
  }
  return act_row;
}

void ForwardPass::MatMul(const WeightMatrix& m, const float* x, int64_t n, float* out) {
  MatMuls({{m, out}}, x, n);
}

void ForwardPass::MatMuls(std::initializer_list<Projection> projections, const float* x, int64_t n) {
  const WeightMatrix& first = projections.begin()->m;
  constexpr int64_t kGroup = cpu::kInterleaveRows;
  bool shared = true;
  for (const Projection& p : projections) {
    shared = shared && p.m.type == first.type && p.m.cols == first.cols &&
             p.m.interleaved == first.interleaved && p.m.rows % kGroup == 0;
  }
  if (!shared && projections.size() > 1) {
    for (const Projection& p : projections) MatMuls({p}, x, n);
    return;
  }
  const int64_t act_row = QuantizeActivations(first.type, x, n, first.cols);
  const std::byte* act = act_.data();
  // Work units: 16-row groups of every matrix in turn (rows, for a single matrix whose
  // rows are not whole groups).
  const int64_t unit = shared ? kGroup : 1;
  int64_t units = 0;
  for (const Projection& p : projections) units += p.m.rows / unit;
  team_.ParallelFor(units, [&](int64_t begin, int64_t end) {
    int64_t base = 0;
    for (const Projection& p : projections) {
      const WeightMatrix& m = p.m;
      const int64_t lo = std::max(begin, base) - base, hi = std::min(end, base + m.rows / unit) - base;
      base += m.rows / unit;
      if (lo >= hi) continue;
      if (m.interleaved) {
        cpu::MatMulInterleaved(m.type, m.data, m.rows, m.cols, act, n, act_row, p.out, m.rows,
                               lo * unit, hi * unit);
      } else {
        cpu::MatMul(m.type, m.data, m.rows, m.cols, act, n, act_row, p.out, m.rows, lo * unit,
                    hi * unit);
      }
    }
  });
}

void ForwardPass::Attention(int64_t layer, const ForwardBatch& batch, PagedKvCache& cache) {
  const ModelConfig& c = config_;
  // One task per span of up to kAttentionSpan tokens of one chunk and run of heads: all
  // heads when there are enough spans to keep the team busy (a decode step), so a task
  // walks each key block and value row of its sequence in address order (heads are
  // neighbours in memory) instead of in scattered 128-byte pieces; fewer heads per task
  // when the spans are few (a single stream). Per head:
  // * Q · K: per key block (stored transposed), the block's 16 scores of every query as
  //   vector lanes, multiply-adds over the head's dimensions in order; scores past a
  //   token's own position are computed and ignored (causal mask).
  // * P · V: the softmax weights rounded to f16 (llama.cpp's f16 cache arithmetic), then
  //   for each token the fused multiply-adds of its weights with the value rows 0 .. pos
  //   in order -- the same sequence however the tokens are batched.
  const auto n_spans = static_cast<int64_t>(spans_.size());
  const int64_t runs = std::clamp<int64_t>((2 * team_.size() + n_spans - 1) / n_spans, 1, c.heads);
  const int64_t heads_per_run = (c.heads + runs - 1) / runs;
  team_.Run(n_spans * runs, [&](int64_t task, int thread) {
    const int64_t first_head = task % runs * heads_per_run;
    const int64_t last_head = std::min(c.heads, first_head + heads_per_run);
    for (int64_t h = first_head; h < last_head; ++h) AttendHead(layer, batch, cache, spans_[task / runs], h, thread);
  });
}

void ForwardPass::AttendHead(int64_t layer, const ForwardBatch& batch, PagedKvCache& cache, const Span& span,
                             int64_t h, int thread) {
  const ModelConfig& c = config_;
  const int64_t group = c.heads / c.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const int64_t head_dim = c.head_dim;
  const int64_t stride = context_stride_;
  const SequenceChunk& seq = batch.sequences[static_cast<size_t>(span.seq)];
  const int64_t nt = span.count;
  const int64_t g = h / group;
  const int64_t first_pos = positions_[static_cast<size_t>(span.first)];
  const int64_t context = first_pos + nt;  // key positions the span's last token sees
  float* scores = &scores_[static_cast<size_t>(thread * kAttentionSpan * stride)];
  int64_t* len = &lengths_[static_cast<size_t>(thread * kAttentionSpan)];
  float* out = &attn_[static_cast<size_t>(span.first * c.q_dim() + h * head_dim)];
  for (int64_t i = 0; i < nt; ++i) std::fill_n(out + i * c.q_dim(), head_dim, 0.0f);
  const int64_t n_blocks = (context + kBlockTokens - 1) / kBlockTokens;
  // The next kv head's part of every block is fetched while this head is computed: a
  // task walks its sequence's heads in order, and each head's blocks are otherwise a
  // cold start (measured: ~10 % off attention at 16 decode streams).
  const bool prefetch_next = h % group == group - 1 && g + 1 < c.kv_heads;
  const int64_t head_elems = kBlockTokens * head_dim;
  auto softmax = [&] {  // each token's scores over the positions it sees
    for (int64_t i = 0; i < nt; ++i) {
      const int64_t pos = first_pos + i;
      cpu::SoftmaxF16(scores + i * stride, pos + 1, scale);
      len[i] = pos + 1;
    }
  };
  if (cache.type() == KvType::kQ8_0) {
    const uint8_t** k_blocks = &k8_blocks_[static_cast<size_t>(thread * (stride / kBlockTokens))];
    const float** k_scales = &k_scales_[static_cast<size_t>(thread * (stride / kBlockTokens))];
    const int8_t** v_blocks = &v8_blocks_[static_cast<size_t>(thread * (stride / kBlockTokens))];
    const float** v_scales = &v_scales_[static_cast<size_t>(thread * (stride / kBlockTokens))];
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int32_t block = seq.blocks[static_cast<size_t>(b)];
      const int64_t head_part = g * head_elems;
      k_blocks[b] = cache.KQ8(layer, block) + head_part;
      k_scales[b] = cache.KScales(layer, block) + g * kBlockTokens;
      v_blocks[b] = cache.VQ8(layer, block) + head_part;
      v_scales[b] = cache.VScales(layer, block) + g * kBlockTokens;
      if (prefetch_next) {
        Prefetch(k_blocks[b] + head_elems, head_elems);
        Prefetch(v_blocks[b] + head_elems, head_elems);
      }
    }
    const float* q_span = &q_[static_cast<size_t>(span.first * c.q_dim() + h * head_dim)];
    cpu::ScoreBlocksQ8(q_span, c.q_dim(), nt, k_blocks, k_scales, n_blocks, head_dim, scores, stride);
    softmax();
    cpu::AccumulateRowsQ8(scores, stride, len, nt, v_blocks, v_scales, head_dim, out, c.q_dim());
    return;
  }
  // The queries rounded to f16, as llama.cpp's f16 cache multiplies them.
  float* q = &q32_[static_cast<size_t>(thread * kAttentionSpan * head_dim)];
  const uint16_t** rows = &v_rows_[static_cast<size_t>(thread * stride)];
  for (int64_t i = 0; i < nt; ++i) {
    std::copy_n(&q_[static_cast<size_t>((span.first + i) * c.q_dim() + h * head_dim)], head_dim, q + i * head_dim);
  }
  cpu::RoundToF16(q, nt * head_dim);
  const uint16_t** k_blocks = &k_blocks_[static_cast<size_t>(thread * (stride / kBlockTokens))];
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int32_t block = seq.blocks[static_cast<size_t>(b)];
    k_blocks[b] = cache.K(layer, block) + g * head_elems;
    const uint16_t* v_block = cache.V(layer, block) + g * head_elems;
    if (prefetch_next) {
      Prefetch(k_blocks[b] + head_elems, head_elems * 2);
      Prefetch(v_block + head_elems, head_elems * 2);
    }
    const int64_t n_rows = std::min(kBlockTokens, context - b * kBlockTokens);
    for (int64_t r = 0; r < n_rows; ++r) rows[b * kBlockTokens + r] = v_block + r * head_dim;
  }
  cpu::ScoreBlocksF16(q, head_dim, nt, k_blocks, n_blocks, kBlockTokens, head_dim, scores, stride);
  softmax();
  cpu::AccumulateRowsF16(scores, stride, len, nt, rows, head_dim, out, c.q_dim());
}

absl::Status ForwardPass::Forward(std::span<const int32_t> tokens, KvCache& cache,
                                  std::span<float> logits) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t vocab = config_.vocab_size;
  if (n == 0) return absl::InvalidArgumentError("forward: no tokens");
  const bool all_logits = static_cast<int64_t>(logits.size()) == n * vocab && n > 1;
  if (!all_logits && static_cast<int64_t>(logits.size()) != vocab) {
    return absl::InvalidArgumentError(
        fmt::format("forward: logits buffer holds {} floats, expected {} or {}", logits.size(), vocab, n * vocab));
  }
  if (cache.size() + n > cache.capacity()) {
    return absl::InvalidArgumentError(fmt::format(
        "forward: {} tokens do not fit the context ({} of {} positions used)", n, cache.size(), cache.capacity()));
  }
  std::vector<int64_t> rows;
  for (int64_t done = 0; done < n; done += max_batch_) {
    const int64_t chunk = std::min(max_batch_, n - done);
    const bool last = done + chunk == n;
    rows.clear();
    if (all_logits) {
      for (int64_t t = 0; t < chunk; ++t) rows.push_back(t);
    } else if (last) {
      rows.push_back(chunk - 1);
    }
    const SequenceChunk seq{.start = cache.size(), .count = chunk, .blocks = cache.blocks()};
    const ForwardBatch batch{.tokens = tokens.subspan(done, chunk), .sequences = std::span(&seq, 1), .logit_rows = rows};
    std::span<float> out = all_logits ? logits.subspan(done * vocab, chunk * vocab)
                                      : (last ? logits : std::span<float>());
    TP_RETURN_IF_ERROR(Run(batch, cache.pages(), out));
    cache.set_size(cache.size() + chunk);
  }
  return absl::OkStatus();
}

absl::Status ForwardPass::Run(const ForwardBatch& batch, PagedKvCache& cache, std::span<float> logits) {
  const ModelConfig& c = config_;
  const ModelWeights& w = model_.weights();
  const int64_t n = static_cast<int64_t>(batch.tokens.size());
  const int64_t emb = c.embedding;
  const int64_t vocab = c.vocab_size;

  // --- validate, and lay out positions, spans and scratch
  if (n == 0) return absl::InvalidArgumentError("forward: no tokens");
  if (n > max_batch_) {
    return absl::InvalidArgumentError(fmt::format("forward: {} tokens exceed the batch of {}", n, max_batch_));
  }
  if (static_cast<int64_t>(logits.size()) != static_cast<int64_t>(batch.logit_rows.size()) * vocab) {
    return absl::InvalidArgumentError(fmt::format("forward: logits buffer holds {} floats, expected {}",
                                                  logits.size(), batch.logit_rows.size() * vocab));
  }
  for (int32_t token : batch.tokens) {
    if (token < 0 || token >= vocab) {
      return absl::InvalidArgumentError(fmt::format("forward: token id {} is outside the vocabulary [0, {})", token, vocab));
    }
  }
  for (int64_t row : batch.logit_rows) {
    if (row < 0 || row >= n) return absl::InvalidArgumentError(fmt::format("forward: logit row {} out of range", row));
  }
  positions_.resize(static_cast<size_t>(n));
  token_seq_.resize(static_cast<size_t>(n));
  spans_.clear();
  int64_t offset = 0, longest = 0;
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    const SequenceChunk& seq = batch.sequences[s];
    const int64_t end = seq.start + seq.count;
    if (seq.start < 0 || seq.count < 1 || offset + seq.count > n) {
      return absl::InvalidArgumentError("forward: sequence chunks do not match the tokens");
    }
    if (static_cast<int64_t>(seq.blocks.size()) * kBlockTokens < end) {
      return absl::InvalidArgumentError(fmt::format(
          "forward: block table of {} blocks does not cover {} positions", seq.blocks.size(), end));
    }
    for (int64_t b = 0; b * kBlockTokens < end; ++b) {
      const int32_t block = seq.blocks[static_cast<size_t>(b)];
      if (block < 0 || block >= cache.num_blocks()) {
        return absl::InvalidArgumentError(fmt::format("forward: block {} is outside the cache", block));
      }
    }
    for (int64_t i = 0; i < seq.count; ++i) {
      positions_[static_cast<size_t>(offset + i)] = seq.start + i;
      token_seq_[static_cast<size_t>(offset + i)] = static_cast<int64_t>(s);
    }
    for (int64_t t0 = 0; t0 < seq.count; t0 += kAttentionSpan) {
      spans_.push_back({static_cast<int64_t>(s), offset + t0, std::min(kAttentionSpan, seq.count - t0)});
    }
    longest = std::max(longest, end);
    offset += seq.count;
  }
  if (offset != n) return absl::InvalidArgumentError("forward: sequence chunks do not match the tokens");
  const auto threads = static_cast<size_t>(team_.size());
  context_stride_ = (longest + kBlockTokens - 1) / kBlockTokens * kBlockTokens;
  const auto per_thread = static_cast<size_t>(kAttentionSpan * context_stride_);
  if (scores_.size() < threads * per_thread) scores_.resize(threads * per_thread);
  if (v_rows_.size() < threads * static_cast<size_t>(context_stride_)) {
    v_rows_.resize(threads * static_cast<size_t>(context_stride_));
  }
  lengths_.resize(threads * kAttentionSpan);
  if (k_blocks_.size() < threads * static_cast<size_t>(context_stride_ / kBlockTokens)) {
    k_blocks_.resize(threads * static_cast<size_t>(context_stride_ / kBlockTokens));
  }
  q32_.resize(threads * kAttentionSpan * static_cast<size_t>(c.head_dim));
  TP_RETURN_IF_ERROR(CheckKvType(c, cache.type()));
  if (cache.type() == KvType::kQ8_0) {
    const size_t block_ptrs = threads * static_cast<size_t>(context_stride_ / kBlockTokens);
    if (k8_blocks_.size() < block_ptrs) {
      k8_blocks_.resize(block_ptrs);
      k_scales_.resize(block_ptrs);
      v8_blocks_.resize(block_ptrs);
      v_scales_.resize(block_ptrs);
    }
  }

  // x[t] = token_embd[token_t]
  const WeightMatrix& embd = w.token_embd;
  for (int64_t t = 0; t < n; ++t) {
    const int32_t token = batch.tokens[static_cast<size_t>(t)];
    const std::byte* row = embd.data + token * embd.row_bytes;
    if (embd.interleaved) {  // a tied output matrix: gather the row back first
      embd_row_.resize(static_cast<size_t>(embd.row_bytes));
      cpu::DeinterleaveRow(embd.type, embd.data, embd.cols, token, embd_row_.data());
      row = embd_row_.data();
    }
    TP_RETURN_IF_ERROR(cpu::DequantizeRow(embd.type, row, &x_[t * emb], emb));
  }

  // cos and sin of every rotary angle of every token, shared by all layers and heads.
  const int64_t half = c.rope_dims / 2;
  rope_cos_.resize(static_cast<size_t>(n * half));
  rope_sin_.resize(rope_cos_.size());
  for (int64_t t = 0; t < n; ++t) {
    const float pos = static_cast<float>(positions_[static_cast<size_t>(t)]);
    for (int64_t i = 0; i < half; ++i) {
      float theta = static_cast<float>(c.rope_freq_scale) * pos * rope_inv_freq_[i];
      if (!w.rope_freq_factors.empty()) theta /= w.rope_freq_factors[i];
      rope_cos_[static_cast<size_t>(t * half + i)] = std::cos(theta);
      rope_sin_[static_cast<size_t>(t * half + i)] = std::sin(theta);
    }
  }

  for (int64_t layer = 0; layer < c.layers; ++layer) {
    const LayerWeights& l = w.layers[static_cast<size_t>(layer)];
    // --- attention block
    team_.Run(n, [&](int64_t t, int) {
      RmsNorm(&x_[t * emb], l.attn_norm.data(), emb, c.rms_eps, &xn_[t * emb]);
    });
    MatMuls({{l.wq, q_.data()}, {l.wk, k_.data()}, {l.wv, v_.data()}}, xn_.data(), n);
    team_.Run(n, [&](int64_t t, int) {
      float* q = &q_[t * c.q_dim()];
      float* k = &k_[t * c.kv_dim()];
      float* v = &v_[t * c.kv_dim()];
      if (!l.bq.empty()) {
        for (int64_t i = 0; i < c.q_dim(); ++i) q[i] += l.bq[i];
        for (int64_t i = 0; i < c.kv_dim(); ++i) k[i] += l.bk[i];
        for (int64_t i = 0; i < c.kv_dim(); ++i) v[i] += l.bv[i];
      }
      if (!l.q_norm.empty()) {
        for (int64_t h = 0; h < c.heads; ++h) {
          RmsNorm(q + h * c.head_dim, l.q_norm.data(), c.head_dim, c.rms_eps, q + h * c.head_dim);
        }
        for (int64_t h = 0; h < c.kv_heads; ++h) {
          RmsNorm(k + h * c.head_dim, l.k_norm.data(), c.head_dim, c.rms_eps, k + h * c.head_dim);
        }
      }
      // RoPE at this token's position (angles computed once per batch, above).
      const float* cos_t = &rope_cos_[static_cast<size_t>(t * half)];
      const float* sin_t = &rope_sin_[static_cast<size_t>(t * half)];
      auto rotate = [&](float* head) {
        for (int64_t i = 0; i < half; ++i) {
          const int64_t a = c.rope_style == RopeStyle::kNormal ? 2 * i : i;
          const int64_t b = c.rope_style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
          const float x0 = head[a];
          const float x1 = head[b];
          head[a] = x0 * cos_t[i] - x1 * sin_t[i];
          head[b] = x0 * sin_t[i] + x1 * cos_t[i];
        }
      };
      for (int64_t h = 0; h < c.heads; ++h) rotate(q + h * c.head_dim);
      for (int64_t h = 0; h < c.kv_heads; ++h) rotate(k + h * c.head_dim);
      // Keys and values into the token's slot of its sequence's block.
      const SequenceChunk& seq = batch.sequences[static_cast<size_t>(token_seq_[static_cast<size_t>(t)])];
      const int64_t pos = positions_[static_cast<size_t>(t)];
      const int32_t block = seq.blocks[static_cast<size_t>(pos / kBlockTokens)];
      const int64_t slot = pos % kBlockTokens;
      if (cache.type() == KvType::kQ8_0) {
        for (int64_t h = 0; h < c.kv_heads; ++h) {
          const int64_t head_part = h * kBlockTokens * c.head_dim;
          cache.KScales(layer, block)[h * kBlockTokens + slot] =
              cpu::StoreKeyQ8(k + h * c.head_dim, c.head_dim, slot, cache.KQ8(layer, block) + head_part);
          cache.VScales(layer, block)[h * kBlockTokens + slot] = cpu::StoreValueQ8(
              v + h * c.head_dim, c.head_dim, cache.VQ8(layer, block) + head_part + slot * c.head_dim);
        }
        return;
      }
      uint16_t* k_block = cache.K(layer, block) + slot;  // transposed: stride 16
      uint16_t* k16 = &k16_[static_cast<size_t>(t * c.kv_dim())];
      cpu::ConvertToF16(k, c.kv_dim(), k16);
      for (int64_t i = 0; i < c.kv_dim(); ++i) k_block[i * kBlockTokens] = k16[i];
      for (int64_t h = 0; h < c.kv_heads; ++h) {
        cpu::ConvertToF16(v + h * c.head_dim, c.head_dim,
                          cache.V(layer, block) + (h * kBlockTokens + slot) * c.head_dim);
      }
    });
    Attention(layer, batch, cache);
    MatMul(l.wo, attn_.data(), n, q_.data());  // q_ reused as the projection output
    for (int64_t i = 0; i < n * emb; ++i) x_[i] += q_[i];

    // --- feed-forward block
    team_.Run(n, [&](int64_t t, int) {
      RmsNorm(&x_[t * emb], l.ffn_norm.data(), emb, c.rms_eps, &xn_[t * emb]);
    });
    MatMuls({{l.w_gate, gate_.data()}, {l.w_up, up_.data()}}, xn_.data(), n);
    team_.Run(n, [&](int64_t t, int) {
      float* g = &gate_[t * c.ffn];
      const float* u = &up_[t * c.ffn];
      cpu::SiluMul(g, u, c.ffn);
    });
    MatMul(l.w_down, gate_.data(), n, q_.data());
    for (int64_t i = 0; i < n * emb; ++i) x_[i] += q_[i];
  }
  if (batch.hidden) {
    team_.Run(n, [&](int64_t t, int) {
      RmsNorm(&x_[t * emb], w.output_norm.data(), emb, c.rms_eps, batch.hidden + t * emb);
    });
  }
  if (batch.logit_rows.empty()) return absl::OkStatus();

  // Final norm and output projection for the rows whose logits are wanted.
  const auto rows = static_cast<int64_t>(batch.logit_rows.size());
  for (int64_t r = 0; r < rows; ++r) {
    RmsNorm(&x_[batch.logit_rows[static_cast<size_t>(r)] * emb], w.output_norm.data(), emb, c.rms_eps,
            &xn_[r * emb]);
  }
  MatMul(w.output, xn_.data(), rows, logits.data());
  return absl::OkStatus();
}

}  // namespace triplane::engine
