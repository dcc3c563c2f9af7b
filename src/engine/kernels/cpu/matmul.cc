// Per-target mat-vec / mat-mat over weight rows, and their run-time dispatch.

// Highway 1.0.3 builds AVX3_DL (AVX-512 VNNI/VBMI...) only on request.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif

#include "engine/kernels/cpu/matmul.h"

#include <algorithm>
#include <cmath>

#include "engine/kernels/cpu/quant_internal.h"

// foreach_target.h must come before the per-target headers.
// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/cpu/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "engine/kernels/cpu/accumulate_rows-inl.h"
#include "engine/kernels/cpu/dot_float-inl.h"
#include "engine/kernels/cpu/dot_q4_k-inl.h"
#include "engine/kernels/cpu/dot_q6_k-inl.h"
#include "engine/kernels/cpu/dot_q8_0-inl.h"
#include "engine/kernels/cpu/gemm_float-inl.h"
#include "engine/kernels/cpu/gemm_k_quant-inl.h"
#include "engine/kernels/cpu/gemm_q8_0-inl.h"
#include "engine/kernels/cpu/gemm_tile-inl.h"
#include "hwy/cache_control.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")
#endif
namespace triplane::engine::cpu {
namespace HWY_NAMESPACE {

// For each weight row in [row_begin, row_end), dots it with every activation row while
// it is hot in L1, so weights stream from memory once per call.
template <class Dot>
HWY_INLINE void Rows(const uint8_t* HWY_RESTRICT w, int64_t row_bytes,
                     const uint8_t* HWY_RESTRICT act, int64_t n_act, int64_t act_stride,
                     float* HWY_RESTRICT out, int64_t out_stride, int64_t row_begin,
                     int64_t row_end, Dot dot) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = w + r * row_bytes;
    for (int64_t a = 0; a < n_act; ++a) out[a * out_stride + r] = dot(row, act + a * act_stride);
  }
}

// Rows for float weights, one row after the other (each output exactly as DotWith).
template <class Row>
HWY_INLINE void RowsFloat(const uint8_t* HWY_RESTRICT w, int64_t row_bytes, int64_t cols,
                          const uint8_t* HWY_RESTRICT act, int64_t n_act, int64_t act_stride,
                          float* HWY_RESTRICT out, int64_t out_stride, int64_t row_begin, int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    for (int64_t a = 0; a < n_act; ++a) {
      out[a * out_stride + r] = DotRow<Row>(w + r * row_bytes, act + a * act_stride, cols);
    }
  }
}

// Fewest activation rows for the tiled kernels. Their results are VecDot's exactly, so
// the choice is only speed: on Zen 4, at 2 rows packing the weights costs more than the
// tiles save; at 4 they are 1.5-2x faster than Rows, at 128 about 3x.
constexpr int64_t kMinTiledActs = 3;

// The register-tiled kernels (gemm_*-inl.h) where this target has one; returns false
// where it has none.
bool TiledT(GgmlType type, const uint8_t* w, int64_t rb, int64_t cols, const uint8_t* act,
            int64_t n_act, int64_t act_stride, float* out, int64_t out_stride, int64_t row_begin,
            int64_t row_end) {
  auto run = [&](auto&& kernel) {
    GemmTiled(kernel, w, rb, act, n_act, act_stride, out, out_stride, row_begin, row_end);
    return true;
  };
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
      return run(GemmFloat(type, cols));
#if TRIPLANE_GEMM_Q8_0
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
      return run(GemmQ8_0(type, cols));
#endif
#if TRIPLANE_GEMM_K_QUANT
    case GgmlType::kQ4_K:
    case GgmlType::kQ6_K:
      return run(GemmKQuant(type, cols));
#endif
    default:
      return false;
  }
}

void MatMulT(GgmlType type, const void* weights, int64_t rb, int64_t cols,
             const void* activations, int64_t n_act, int64_t act_stride, float* out,
             int64_t out_stride, int64_t row_begin, int64_t row_end) {
  const auto* w = static_cast<const uint8_t*>(weights);
  const auto* act = static_cast<const uint8_t*>(activations);
  if (n_act >= kMinTiledActs &&
      TiledT(type, w, rb, cols, act, n_act, act_stride, out, out_stride, row_begin, row_end)) {
    return;
  }
  auto run = [&](auto dot) {
    Rows(w, rb, act, n_act, act_stride, out, out_stride, row_begin, row_end, dot);
  };
  switch (type) {
    case GgmlType::kF32:
      RowsFloat<F32Row>(w, rb, cols, act, n_act, act_stride, out, out_stride, row_begin, row_end);
      break;
    case GgmlType::kF16:
      RowsFloat<F16Row>(w, rb, cols, act, n_act, act_stride, out, out_stride, row_begin, row_end);
      break;
    case GgmlType::kBF16:
      RowsFloat<BF16Row>(w, rb, cols, act, n_act, act_stride, out, out_stride, row_begin, row_end);
      break;
    case GgmlType::kQ8_0:
      run([cols](const uint8_t* x, const uint8_t* y) { return DotQ8_0(x, y, cols); });
      break;
    case GgmlType::kQ4_0:
      run([cols](const uint8_t* x, const uint8_t* y) { return DotQ4_0(x, y, cols); });
      break;
    case GgmlType::kQ4_K:
      run([cols](const uint8_t* x, const uint8_t* y) { return DotQ4K(x, y, cols); });
      break;
    case GgmlType::kQ6_K:
      run([cols](const uint8_t* x, const uint8_t* y) { return DotQ6K(x, y, cols); });
      break;
    default:
      break;
  }
}

float VecDotT(GgmlType type, const void* w, const void* a, int64_t n) {
  float out = 0.0f;
  MatMulT(type, w, RowBytes(type, n), n, a, 1, 0, &out, 1, 0, 1);
  return out;
}

void ToF16T(const float* HWY_RESTRICT x, int64_t n, uint16_t* HWY_RESTRICT out) {
  int64_t i = 0;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  }
#elif HWY_TARGET == HWY_AVX2
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  }
#endif
  for (; i < n; ++i) out[i] = Fp32ToFp16(x[i]);
}

void RoundToF16T(float* HWY_RESTRICT x, int64_t n) {
  int64_t i = 0;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(x + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
  }
#elif HWY_TARGET == HWY_AVX2
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
  }
#endif
  for (; i < n; ++i) x[i] = Fp16ToFp32(Fp32ToFp16(x[i]));
}

void SiluMulT(float* HWY_RESTRICT g, const float* HWY_RESTRICT u, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto one = hn::Set(d, 1.0f), floor = hn::Set(d, -80.0f);  // exp(80) is finite
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto x = hn::LoadU(d, g + i);
    const auto e = hn::Exp(d, hn::Neg(hn::Max(x, floor)));
    hn::StoreU(hn::Mul(hn::Div(x, hn::Add(one, e)), hn::LoadU(d, u + i)), d, g + i);
  }
  for (; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-std::max(g[i], -80.0f))) * u[i];
}

double ExpScaledT(const float* HWY_RESTRICT x, int64_t n, float shift, float scale, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto vshift = hn::Set(d, shift), vscale = hn::Set(d, scale);
  // Summed one vector at a time into a double: float lanes running over a whole
  // vocabulary would drop the small terms once a lane holds a large one.
  double sum = 0;
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto e = hn::Exp(d, hn::Mul(hn::Sub(hn::LoadU(d, x + i), vshift), vscale));
    hn::StoreU(e, d, out + i);
    sum += hn::GetLane(hn::SumOfLanes(d, e));
  }
  for (; i < n; ++i) {
    out[i] = std::exp((x[i] - shift) * scale);
    sum += out[i];
  }
  return sum;
}

int64_t ArgMaxT(const float* HWY_RESTRICT x, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  // The largest value, then the first position holding it: two passes over a row that
  // is in cache, against one compare-and-branch per element.
  int64_t i = 0;
  float best = x[0];
  if (n >= N) {
    auto m = hn::LoadU(d, x);
    auto nan = hn::IsNaN(m);
    for (i = N; i + N <= n; i += N) {
      const auto v = hn::LoadU(d, x + i);
      nan = hn::Or(nan, hn::IsNaN(v));
      m = hn::Max(m, v);
    }
    if (!hn::AllFalse(d, nan)) return -1;
    best = hn::GetLane(hn::MaxOfLanes(d, m));
  }
  for (; i < n; ++i) {
    if (std::isnan(x[i])) return -1;
    best = x[i] > best ? x[i] : best;
  }
  const auto target = hn::Set(d, best);
  for (i = 0; i + N <= n; i += N) {
    const intptr_t at = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, x + i), target));
    if (at >= 0) return i + at;
  }
  for (; i < n; ++i) {
    if (x[i] == best) return i;
  }
  return -1;  // not reached: only a NaN equals nothing
}

void SoftmaxF16T(float* HWY_RESTRICT x, int64_t n, float scale) {
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  using V = hn::Vec<decltype(d)>;
  // Visits x in vectors; the last one is partial (masked load, blended store).
  auto each = [&](auto fn) {
    for (int64_t i = 0; i < n; i += N) {
      const auto mask = hn::FirstN(d, static_cast<size_t>(std::min(N, n - i)));
      const V v = fn(hn::MaskedLoad(mask, d, x + i), mask);
      hn::BlendedStore(v, mask, d, x + i);
    }
  };
  const V vscale = hn::Set(d, scale);
  V vmax = hn::Set(d, -HUGE_VALF);
  each([&](V v, auto mask) {
    v = hn::Mul(v, vscale);
    vmax = hn::IfThenElse(mask, hn::Max(vmax, v), vmax);
    return v;
  });
  const V top = hn::MaxOfLanes(d, vmax);
  V vsum = hn::Zero(d);
  each([&](V v, auto mask) {
    const V e = hn::IfThenElseZero(mask, hn::Exp(d, hn::Sub(v, top)));
    vsum = hn::Add(vsum, e);
    return e;
  });
  const V inv = hn::Div(hn::Set(d, 1.0f), hn::SumOfLanes(d, vsum));
  each([&](V v, auto) { return hn::PromoteTo(d, hn::DemoteTo(dh, hn::Mul(v, inv))); });
}

// accumulate_rows-inl.h over f16 rows, prefetching a block (16 rows) ahead: the rows of
// a paged cache's next block are elsewhere in memory.
void AccumulateRowsF16T(const float* HWY_RESTRICT p, int64_t p_stride, const int64_t* len,
                        int64_t n_tokens, const uint16_t* const* rows, int64_t dim,
                        float* HWY_RESTRICT acc, int64_t acc_stride) {
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  constexpr int64_t kAhead = 16;
  AccumulateRows(
      d, len, n_tokens, dim, acc, acc_stride,
      [&](int64_t j, int64_t c) {
        return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(rows[j] + c)));
      },
      [&](int64_t j, int64_t c) { return Fp16ToFp32(rows[j][c]); },
      [&](int64_t t, int64_t j) { return p[t * p_stride + j]; },
      [&](int64_t j, int64_t c) {
        if (j + kAhead >= len[0]) return;
        for (int64_t line = 0; line < 4 * N * 2; line += 64) {
          hwy::Prefetch(reinterpret_cast<const uint8_t*>(rows[j + kAhead] + c) + line);
        }
      });
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// x * scale rounded to nearest even (the MXCSR default, as NearestInt), as int32 lanes.
HWY_INLINE __m512i RoundScaled(const float* x, __m512 scale) {
  return _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x), scale));
}

// internal::QuantizeActivationsQ8_0, 32 elements at a time.
void QuantizeQ8_0Avx512(const float* HWY_RESTRICT x, BlockQ8_0* HWY_RESTRICT y, int64_t n) {
  const __m512 sign_off = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  for (int64_t b = 0; b < n / kQK8_0; ++b, x += kQK8_0) {
    const __m512 a0 = _mm512_and_ps(_mm512_loadu_ps(x), sign_off);
    const __m512 a1 = _mm512_and_ps(_mm512_loadu_ps(x + 16), sign_off);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
    y[b].d = Fp32ToFp16(amax / 127.0f);
    const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    for (int h = 0; h < 2; ++h) {
      // |x * id| <= 127 (plus rounding): int8 saturation is the reference's clamp.
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16 * h), _mm512_cvtsepi32_epi8(RoundScaled(x + 16 * h, id)));
    }
  }
}

// internal::QuantizeQ8_K: the scale from the first element of largest magnitude.
void QuantizeQ8_KAvx512(const float* HWY_RESTRICT x, BlockQ8_K* HWY_RESTRICT y, int64_t n) {
  const __m512 sign_off = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    __m512 m = _mm512_setzero_ps();
    for (int v = 0; v < 16; ++v) m = _mm512_max_ps(m, _mm512_and_ps(_mm512_loadu_ps(x + 16 * v), sign_off));
    const float amax = _mm512_reduce_max_ps(m);
    if (!(amax > 0.0f)) {
      internal::QuantizeQ8_K(x, &y[b], kQK_K);  // all zero (or NaN): the reference's way
      continue;
    }
    float max = 0.0f;
    for (int v = 0; v < 16; ++v) {
      const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_and_ps(_mm512_loadu_ps(x + 16 * v), sign_off),
                                               _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (hit) {
        max = x[16 * v + __builtin_ctz(hit)];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m512 scale = _mm512_set1_ps(iscale);
    for (int v = 0; v < 16; ++v) {
      const __m512i q = _mm512_min_epi32(RoundScaled(x + 16 * v, scale), _mm512_set1_epi32(127));
      const __m128i q8 = _mm512_cvtsepi32_epi8(q);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16 * v), q8);
      y[b].bsums[v] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
    }
    y[b].d = 1.0f / iscale;
  }
}
#endif

void QuantizeActivationsT(GgmlType weight_type, const float* x, int64_t n, void* dst) {
  const bool k_quant = weight_type == GgmlType::kQ4_K || weight_type == GgmlType::kQ6_K;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if (k_quant) {
    QuantizeQ8_KAvx512(x, static_cast<BlockQ8_K*>(dst), n);
  } else {
    QuantizeQ8_0Avx512(x, static_cast<BlockQ8_0*>(dst), n);
  }
#else
  if (k_quant) {
    internal::QuantizeQ8_K(x, static_cast<BlockQ8_K*>(dst), n);
  } else {
    internal::QuantizeActivationsQ8_0(x, static_cast<BlockQ8_0*>(dst), n);
  }
#endif
}

// One token's scores against kC chunks of N columns (chunk c at cols[c], row e at
// cols[c] + e * kt_stride): kC independent fma chains over e, all in registers.
template <int kC, class D>
HWY_INLINE void ScoreChunksOneToken(D d, const float* HWY_RESTRICT q, const hwy::float16_t* const cols[kC],
                                    int64_t kt_stride, int64_t dim, float* HWY_RESTRICT out) {
  const hn::Rebind<hwy::float16_t, D> dh;
  hn::Vec<D> a[kC];
  for (int c = 0; c < kC; ++c) a[c] = hn::Zero(d);
  for (int64_t e = 0; e < dim; ++e) {
    const auto qv = hn::Set(d, q[e]);
    for (int c = 0; c < kC; ++c) a[c] = hn::MulAdd(qv, hn::PromoteTo(d, hn::LoadU(dh, cols[c] + e * kt_stride)), a[c]);
  }
  for (int c = 0; c < kC; ++c) hn::StoreU(a[c], d, out + c * hn::Lanes(d));
}

void ScoreBlocksF16T(const float* HWY_RESTRICT q, int64_t q_stride, int64_t n_tokens,
                     const uint16_t* const* blocks, int64_t n_blocks, int64_t kt_stride, int64_t dim,
                     float* HWY_RESTRICT out, int64_t out_stride) {
  constexpr int64_t kCols = 16;  // columns per block
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  using V = hn::Vec<decltype(d)>;
  if (N > kCols || kCols % N != 0) {  // no target has such vectors; keep the scalar order
    for (int64_t b = 0; b < n_blocks; ++b) {
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t j = 0; j < kCols; ++j) {
          float a = 0.0f;
          for (int64_t e = 0; e < dim; ++e) a = std::fma(q[t * q_stride + e], Fp16ToFp32(blocks[b][e * kt_stride + j]), a);
          out[t * out_stride + b * kCols + j] = a;
        }
      }
    }
    return;
  }
  const int64_t per_block = kCols / N;
  const int64_t chunks = n_blocks * per_block;  // vectors of N columns
  auto load = [&](int64_t chunk, int64_t e) {
    const uint16_t* p = blocks[chunk / per_block] + e * kt_stride + (chunk % per_block) * N;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
  };
  // Every output lane is acc = fma(q[e], k[e], acc) for e = 0 .. dim - 1; the loops only
  // choose how many independent accumulators run side by side (4 tokens, or 8 or 4 chunks
  // of columns when there are fewer tokens, as in decode).
  if (n_tokens == 1) {  // decode: 8 chunks side by side (enough chains to hide fma latency)
    constexpr int kWide = 8;
    const hwy::float16_t* cols[kWide];
    auto chunk_at = [&](int64_t chunk) {
      return reinterpret_cast<const hwy::float16_t*>(blocks[chunk / per_block] + (chunk % per_block) * N);
    };
    int64_t c0 = 0;
    for (; c0 + kWide <= chunks; c0 += kWide) {
      for (int c = 0; c < kWide; ++c) cols[c] = chunk_at(c0 + c);
      ScoreChunksOneToken<kWide>(d, q, cols, kt_stride, dim, out + c0 * N);
    }
    const int64_t rest = chunks - c0;
    for (int64_t c = 0; c < rest; ++c) cols[c] = chunk_at(c0 + c);
    float* o = out + c0 * N;
    switch (rest) {  // the last chunks side by side too
      case 1: ScoreChunksOneToken<1>(d, q, cols, kt_stride, dim, o); break;
      case 2: ScoreChunksOneToken<2>(d, q, cols, kt_stride, dim, o); break;
      case 3: ScoreChunksOneToken<3>(d, q, cols, kt_stride, dim, o); break;
      case 4: ScoreChunksOneToken<4>(d, q, cols, kt_stride, dim, o); break;
      case 5: ScoreChunksOneToken<5>(d, q, cols, kt_stride, dim, o); break;
      case 6: ScoreChunksOneToken<6>(d, q, cols, kt_stride, dim, o); break;
      case 7: ScoreChunksOneToken<7>(d, q, cols, kt_stride, dim, o); break;
      default: break;
    }
    return;
  }
  if (n_tokens >= 4) {
    for (int64_t c = 0; c < chunks; ++c) {
      for (int64_t t0 = 0; t0 < n_tokens; t0 += 4) {
        const int64_t nt = std::min<int64_t>(4, n_tokens - t0);
        const float* q0 = q + t0 * q_stride;
        V a[4] = {hn::Zero(d), hn::Zero(d), hn::Zero(d), hn::Zero(d)};
        for (int64_t e = 0; e < dim; ++e) {
          const V k = load(c, e);
          for (int64_t i = 0; i < nt; ++i) a[i] = hn::MulAdd(hn::Set(d, q0[i * q_stride + e]), k, a[i]);
        }
        for (int64_t i = 0; i < nt; ++i) hn::StoreU(a[i], d, out + (t0 + i) * out_stride + c * N);
      }
    }
    return;
  }
  for (int64_t c0 = 0; c0 < chunks; c0 += 4) {
    const int64_t nc = std::min<int64_t>(4, chunks - c0);
    V a[3][4];
    for (auto& row : a) {
      for (V& v : row) v = hn::Zero(d);
    }
    for (int64_t e = 0; e < dim; ++e) {
      V k[4];
      for (int64_t c = 0; c < nc; ++c) k[c] = load(c0 + c, e);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const V qv = hn::Set(d, q[t * q_stride + e]);
        for (int64_t c = 0; c < nc; ++c) a[t][c] = hn::MulAdd(qv, k[c], a[t][c]);
      }
    }
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t c = 0; c < nc; ++c) hn::StoreU(a[t][c], d, out + t * out_stride + (c0 + c) * N);
    }
  }
}

int64_t TargetT() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace triplane::engine::cpu {

HWY_EXPORT(MatMulT);
HWY_EXPORT(VecDotT);
HWY_EXPORT(TargetT);
HWY_EXPORT(ToF16T);
HWY_EXPORT(RoundToF16T);
HWY_EXPORT(QuantizeActivationsT);

namespace internal {
void QuantizeActivationsFast(GgmlType weight_type, const float* x, int64_t n, void* dst) {
  HWY_DYNAMIC_DISPATCH(QuantizeActivationsT)(weight_type, x, n, dst);
}
}  // namespace internal
HWY_EXPORT(AccumulateRowsF16T);
HWY_EXPORT(ExpScaledT);
HWY_EXPORT(SiluMulT);
HWY_EXPORT(ScoreBlocksF16T);
HWY_EXPORT(SoftmaxF16T);
HWY_EXPORT(ArgMaxT);

int64_t ArgMax(const float* x, int64_t n) {
  if (n <= 0) return -1;
  const int64_t at = HWY_DYNAMIC_DISPATCH(ArgMaxT)(x, n);
  return at >= 0 ? at : std::max_element(x, x + n) - x;  // NaNs: std::max_element's answer
}

void SiluMul(float* g, const float* u, int64_t n) { HWY_DYNAMIC_DISPATCH(SiluMulT)(g, u, n); }

double ExpScaled(const float* x, int64_t n, float shift, float scale, float* out) {
  return HWY_DYNAMIC_DISPATCH(ExpScaledT)(x, n, shift, scale, out);
}

void SoftmaxF16(float* x, int64_t n, float scale) { HWY_DYNAMIC_DISPATCH(SoftmaxF16T)(x, n, scale); }

void ScoreBlocksF16(const float* q, int64_t q_stride, int64_t n_tokens, const uint16_t* const* blocks,
                    int64_t n_blocks, int64_t kt_stride, int64_t dim, float* out, int64_t out_stride) {
  HWY_DYNAMIC_DISPATCH(ScoreBlocksF16T)(q, q_stride, n_tokens, blocks, n_blocks, kt_stride, dim, out, out_stride);
}

void RoundToF16(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(RoundToF16T)(x, n); }

void AccumulateRowsF16(const float* p, int64_t p_stride, const int64_t* len, int64_t n_tokens,
                       const uint16_t* const* rows, int64_t dim, float* acc, int64_t acc_stride) {
  HWY_DYNAMIC_DISPATCH(AccumulateRowsF16T)(p, p_stride, len, n_tokens, rows, dim, acc, acc_stride);
}

void ConvertToF16(const float* x, int64_t n, uint16_t* out) {
  HWY_DYNAMIC_DISPATCH(ToF16T)(x, n, out);
}

float VecDot(GgmlType weight_type, const void* w_row, const void* activation_row, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(VecDotT)(weight_type, w_row, activation_row, n);
}

void MatVec(GgmlType type, const void* weights, int64_t rows, int64_t cols, const void* activation,
            float* out, int64_t row_begin, int64_t row_end) {
  HWY_DYNAMIC_DISPATCH(MatMulT)
  (type, weights, RowBytes(type, cols), cols, activation, 1, 0, out, rows, row_begin, row_end);
}

void MatMul(GgmlType type, const void* weights, int64_t /*rows*/, int64_t cols,
            const void* activations, int64_t n_act, int64_t act_stride_bytes, float* out,
            int64_t out_stride, int64_t row_begin, int64_t row_end) {
  HWY_DYNAMIC_DISPATCH(MatMulT)
  (type, weights, RowBytes(type, cols), cols, activations, n_act, act_stride_bytes, out,
   out_stride, row_begin, row_end);
}

std::vector<int64_t> KernelTargets() { return hwy::SupportedAndGeneratedTargets(); }

std::string ActiveKernelTarget() { return hwy::TargetName(HWY_DYNAMIC_DISPATCH(TargetT)()); }

}  // namespace triplane::engine::cpu
#endif  // HWY_ONCE
