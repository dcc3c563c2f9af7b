#include "engine/model/forward.h"

#include <algorithm>
#include <cmath>

#include "common/status_macros.h"
#include "engine/kernels/cpu/fp16.h"
#include "engine/kernels/cpu/interleaved.h"
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

float Silu(float x) { return x / (1.0f + std::exp(-x)); }

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

void ForwardPass::MatMul(const WeightMatrix& m, const float* x, int64_t n, float* out) {
  const GgmlType act_type = cpu::ActivationType(m.type);
  const int64_t act_row = cpu::RowBytes(act_type, m.cols);
  std::byte* act = act_.data();
  team_.Run(n, [&](int64_t row, int) {
    cpu::QuantizeActivations(m.type, x + row * m.cols, m.cols, act + row * act_row);
  });
  if (m.interleaved) {  // split whole 16-row groups
    constexpr int64_t kGroup = cpu::kInterleaveRows;
    team_.ParallelFor(m.rows / kGroup, [&](int64_t begin, int64_t end) {
      cpu::MatMulInterleaved(m.type, m.data, m.rows, m.cols, act, n, act_row, out, m.rows,
                             begin * kGroup, end * kGroup);
    });
    return;
  }
  team_.ParallelFor(m.rows, [&](int64_t begin, int64_t end) {
    cpu::MatMul(m.type, m.data, m.rows, m.cols, act, n, act_row, out, m.rows, begin, end);
  });
}

void ForwardPass::Attention(int64_t layer, int64_t n, int64_t start, KvCache& cache) {
  const ModelConfig& c = config_;
  const int64_t group = c.heads / c.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const int64_t head_dim = c.head_dim;
  const int64_t k_stride = c.kv_dim() * static_cast<int64_t>(sizeof(uint16_t));
  const int64_t v_stride = cache.v_stride();
  const int64_t v_stride_bytes = v_stride * static_cast<int64_t>(sizeof(uint16_t));
  const int64_t spans = (n + kAttentionSpan - 1) / kAttentionSpan;
  // One task per head and span of up to kAttentionSpan tokens, each product one
  // mat-mat over the cache, whose tiled kernels give exactly VecDot's bits:
  // * Q · K over key rows [0, context): scores past a token's own position are computed
  //   and ignored (causal mask).
  // * P · V over value rows of `padded` positions, a multiple of KvCache::kVPad: each
  //   token's weights are zero past its position. With whole 4-vector groups and no
  //   scalar tail, extra zeros add +0 to every partial sum, so a token's output does not
  //   depend on how far the padding goes -- prompt and token-by-token decode agree bit
  //   for bit.
  team_.Run(spans * c.heads, [&](int64_t task, int thread) {
    const int64_t h = task % c.heads;
    const int64_t t0 = task / c.heads * kAttentionSpan;
    const int64_t nt = std::min(kAttentionSpan, n - t0);
    const int64_t g = h / group;
    const int64_t context = start + t0 + nt;  // key positions the span's last token sees
    const int64_t padded = (context + KvCache::kVPad - 1) / KvCache::kVPad * KvCache::kVPad;
    float* scores = &scores_[static_cast<size_t>(thread * kAttentionSpan * v_stride)];
    uint16_t* probs = &probs16_[static_cast<size_t>(thread * kAttentionSpan * v_stride)];
    uint16_t* q16 = &q16_[static_cast<size_t>(thread * kAttentionSpan * head_dim)];
    // Q · K in f16 × f16 with f32 accumulation, and the softmax weights rounded to f16
    // for the product with V: the arithmetic of llama.cpp's f16 KV cache.
    for (int64_t i = 0; i < nt; ++i) {
      cpu::QuantizeActivations(GgmlType::kF16, &q_[static_cast<size_t>((t0 + i) * c.q_dim() + h * head_dim)],
                               head_dim, q16 + i * head_dim);
    }
    cpu::MatMulStrided(GgmlType::kF16, cache.K(layer, 0) + g * head_dim, k_stride, head_dim, q16, nt,
                       head_dim * static_cast<int64_t>(sizeof(uint16_t)), scores, v_stride, 0, context);
    for (int64_t i = 0; i < nt; ++i) {
      const int64_t pos = start + t0 + i;
      float* row = scores + i * v_stride;
      float max_score = -INFINITY;
      for (int64_t j = 0; j <= pos; ++j) {
        row[j] *= scale;
        max_score = std::max(max_score, row[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j <= pos; ++j) {
        row[j] = std::exp(row[j] - max_score);
        sum += row[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = 0; j <= pos; ++j) row[j] *= inv;
      uint16_t* p = probs + i * v_stride;
      cpu::QuantizeActivations(GgmlType::kF16, row, pos + 1, p);
      std::fill(p + pos + 1, p + padded, uint16_t{0});
    }
    cpu::MatMulStrided(GgmlType::kF16, cache.Vt(layer, g * head_dim), v_stride_bytes, padded, probs, nt,
                       v_stride_bytes, &attn_[static_cast<size_t>(t0 * c.q_dim() + h * head_dim)], c.q_dim(),
                       0, head_dim);
  });
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
  for (int32_t token : tokens) {
    if (token < 0 || token >= vocab) {
      return absl::InvalidArgumentError(fmt::format("forward: token id {} is outside the vocabulary [0, {})", token, vocab));
    }
  }
  const auto threads = static_cast<size_t>(team_.size());
  const auto span_floats = static_cast<size_t>(kAttentionSpan * cache.v_stride());
  if (probs16_.size() < threads * span_floats) {
    scores_.resize(threads * span_floats);
    probs16_.resize(threads * span_floats);
  }
  q16_.resize(threads * kAttentionSpan * static_cast<size_t>(config_.head_dim));
  for (int64_t done = 0; done < n; done += max_batch_) {
    const int64_t chunk = std::min(max_batch_, n - done);
    const bool last = done + chunk == n;
    float* out = all_logits ? logits.data() + done * vocab : (last ? logits.data() : nullptr);
    TP_RETURN_IF_ERROR(ForwardChunk(tokens.subspan(done, chunk), cache, out, all_logits));
  }
  return absl::OkStatus();
}

absl::Status ForwardPass::ForwardChunk(std::span<const int32_t> tokens, KvCache& cache,
                                       float* logits, bool all_logits) {
  const ModelConfig& c = config_;
  const ModelWeights& w = model_.weights();
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t start = cache.size();
  const int64_t emb = c.embedding;

  // x[t] = token_embd[token_t]
  const WeightMatrix& embd = w.token_embd;
  for (int64_t t = 0; t < n; ++t) {
    const std::byte* row = embd.data + tokens[t] * embd.row_bytes;
    if (embd.interleaved) {  // a tied output matrix: gather the row back first
      embd_row_.resize(static_cast<size_t>(embd.row_bytes));
      cpu::DeinterleaveRow(embd.type, embd.data, embd.cols, tokens[t], embd_row_.data());
      row = embd_row_.data();
    }
    TP_RETURN_IF_ERROR(cpu::DequantizeRow(embd.type, row, &x_[t * emb], emb));
  }

  // cos and sin of every rotary angle of every token, shared by all layers and heads.
  const int64_t half = c.rope_dims / 2;
  rope_cos_.resize(static_cast<size_t>(n * half));
  rope_sin_.resize(rope_cos_.size());
  for (int64_t t = 0; t < n; ++t) {
    const float pos = static_cast<float>(start + t);
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
    MatMul(l.wq, xn_.data(), n, q_.data());
    MatMul(l.wk, xn_.data(), n, k_.data());
    MatMul(l.wv, xn_.data(), n, v_.data());
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
      // RoPE at this token's position (angles computed once per chunk, below).
      const int64_t half = c.rope_dims / 2;
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
      uint16_t* k_cache = cache.K(layer, start + t);
      for (int64_t i = 0; i < c.kv_dim(); ++i) {
        k_cache[i] = cpu::Fp32ToFp16(k[i]);
        cache.Vt(layer, i)[start + t] = cpu::Fp32ToFp16(v[i]);
      }
    });
    Attention(layer, n, start, cache);
    MatMul(l.wo, attn_.data(), n, q_.data());  // q_ reused as the projection output
    for (int64_t i = 0; i < n * emb; ++i) x_[i] += q_[i];

    // --- feed-forward block
    team_.Run(n, [&](int64_t t, int) {
      RmsNorm(&x_[t * emb], l.ffn_norm.data(), emb, c.rms_eps, &xn_[t * emb]);
    });
    MatMul(l.w_gate, xn_.data(), n, gate_.data());
    MatMul(l.w_up, xn_.data(), n, up_.data());
    team_.Run(n, [&](int64_t t, int) {
      float* g = &gate_[t * c.ffn];
      const float* u = &up_[t * c.ffn];
      for (int64_t i = 0; i < c.ffn; ++i) g[i] = Silu(g[i]) * u[i];
    });
    MatMul(l.w_down, gate_.data(), n, q_.data());
    for (int64_t i = 0; i < n * emb; ++i) x_[i] += q_[i];
  }
  cache.set_size(start + n);
  if (!logits) return absl::OkStatus();

  // Final norm and output projection for the rows whose logits are wanted.
  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t rows = n - first;
  for (int64_t t = first; t < n; ++t) {
    RmsNorm(&x_[t * emb], w.output_norm.data(), emb, c.rms_eps, &xn_[(t - first) * emb]);
  }
  MatMul(w.output, xn_.data(), rows, logits);
  return absl::OkStatus();
}

}  // namespace triplane::engine
