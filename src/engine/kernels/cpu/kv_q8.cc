// 8-bit KV cache kernels (kv_q8.h), per Highway target. Scores use AVX-512 VNNI on
// AVX3_DL and exact integer loops elsewhere (the same bits either way); values are
// widened to float with Highway on every target.

// Highway 1.0.3 builds AVX3_DL (AVX-512 VNNI/VBMI...) only on request.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif

#include "engine/kernels/cpu/kv_q8.h"

#include <algorithm>
#include <cmath>
#include <cstring>

// foreach_target.h must come before the per-target headers.
// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/cpu/kv_q8.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "engine/kernels/cpu/accumulate_rows-inl.h"
#include "hwy/highway.h"
// clang-format on

#if HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")
#endif
namespace triplane::engine::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// x[0, n) as int8 with one scale (returned): max |x| / 127, each x * (127 / max |x|)
// rounded to nearest even -- the same bits on every target. All zero (scale 0) when the
// vector is zero or not finite.
float QuantizeQ8T(const float* HWY_RESTRICT x, int64_t n, int8_t* HWY_RESTRICT out) {
  const hn::ScalableTag<float> d;
  const hn::Rebind<int32_t, decltype(d)> di;
  const hn::Rebind<int8_t, decltype(d)> d8;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto vmax = hn::Zero(d);
  auto nan = hn::Lt(vmax, vmax);  // all false; Max may drop a NaN, so they are tracked apart
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, x + i);
    vmax = hn::Max(vmax, hn::Abs(v));
    nan = hn::Or(nan, hn::IsNaN(v));
  }
  float amax = hn::GetLane(hn::MaxOfLanes(d, vmax));
  bool finite = hn::AllFalse(d, nan) && std::isfinite(amax);
  for (; i < n; ++i) {
    amax = std::max(amax, std::fabs(x[i]));
    finite = finite && std::isfinite(x[i]);
  }
  if (!(amax > 0.0f) || !finite) {
    std::fill_n(out, n, int8_t{0});
    return 0.0f;
  }
  const float id = 127.0f / amax;
  const auto vid = hn::Set(d, id);
  const auto lo = hn::Set(di, -127), hi = hn::Set(di, 127);
  for (i = 0; i + N <= n; i += N) {
    const auto q = hn::Min(hn::Max(hn::NearestInt(hn::Mul(hn::LoadU(d, x + i), vid)), lo), hi);
    hn::StoreU(hn::DemoteTo(d8, q), d8, out + i);
  }
  for (; i < n; ++i) out[i] = static_cast<int8_t>(std::clamp(static_cast<int>(std::nearbyint(x[i] * id)), -127, 127));
  return amax / 127.0f;
}

#if HWY_TARGET == HWY_AVX3_DL
// kC key blocks against one quantized query: kC independent vpdpbusd chains over the
// query's 4-byte groups, then the bias and the scales.
template <int kC>
HWY_INLINE void ScoreBlocksVnni(const int32_t* q4, int64_t groups, int32_t bias, float dq,
                                const uint8_t* const* blocks, const float* const* scales, float* out) {
  __m512i acc[kC];
  for (int c = 0; c < kC; ++c) acc[c] = _mm512_setzero_si512();
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i qv = _mm512_set1_epi32(q4[g]);
    for (int c = 0; c < kC; ++c) acc[c] = _mm512_dpbusd_epi32(acc[c], _mm512_loadu_si512(blocks[c] + 64 * g), qv);
  }
  const __m512 dqv = _mm512_set1_ps(dq);
  for (int c = 0; c < kC; ++c) {
    const __m512 isum = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[c], _mm512_set1_epi32(bias)));
    _mm512_storeu_ps(out + kKvBlockQ8 * c, _mm512_mul_ps(isum, _mm512_mul_ps(dqv, _mm512_loadu_ps(scales[c]))));
  }
}
#endif

void ScoreBlocksQ8T(const float* HWY_RESTRICT q, int64_t q_stride, int64_t n_tokens, const uint8_t* const* blocks,
                    const float* const* scales, int64_t n_blocks, int64_t dim, float* HWY_RESTRICT out,
                    int64_t out_stride) {
  const int64_t groups = dim / 4;
  alignas(64) int8_t q8[kMaxHeadDimQ8];
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float dq = QuantizeQ8T(q + t * q_stride, dim, q8);
    int32_t qsum = 0;
    for (int64_t e = 0; e < dim; ++e) qsum += q8[e];
    float* o = out + t * out_stride;
#if HWY_TARGET == HWY_AVX3_DL
    int32_t q4[kMaxHeadDimQ8 / 4];
    std::memcpy(q4, q8, static_cast<size_t>(dim));
    const int32_t bias = 128 * qsum;  // keys are stored plus 128
    constexpr int kWide = 4;
    int64_t b = 0;
    for (; b + kWide <= n_blocks; b += kWide) {
      ScoreBlocksVnni<kWide>(q4, groups, bias, dq, blocks + b, scales + b, o + kKvBlockQ8 * b);
    }
    for (; b < n_blocks; ++b) ScoreBlocksVnni<1>(q4, groups, bias, dq, blocks + b, scales + b, o + kKvBlockQ8 * b);
#else
    for (int64_t b = 0; b < n_blocks; ++b) {
      int32_t isum[kKvBlockQ8] = {};
      for (int64_t g = 0; g < groups; ++g) {
        const uint8_t* k = blocks[b] + 4 * kKvBlockQ8 * g;
        for (int64_t j = 0; j < kKvBlockQ8; ++j) {
          for (int64_t i = 0; i < 4; ++i) isum[j] += (static_cast<int32_t>(k[4 * j + i]) - 128) * q8[4 * g + i];
        }
      }
      for (int64_t j = 0; j < kKvBlockQ8; ++j) {
        o[kKvBlockQ8 * b + j] = static_cast<float>(isum[j]) * (dq * scales[b][j]);
      }
    }
#endif
  }
}

// accumulate_rows-inl.h over int8 rows: row j is row j % 16 of block j / 16, weighted
// by p_j times its scale.
void AccumulateRowsQ8T(const float* HWY_RESTRICT p, int64_t p_stride, const int64_t* len, int64_t n_tokens,
                       const int8_t* const* blocks, const float* const* scales, int64_t dim,
                       float* HWY_RESTRICT acc, int64_t acc_stride) {
  const hn::ScalableTag<float> d;
  const hn::Rebind<int32_t, decltype(d)> di;
  const hn::Rebind<int8_t, decltype(d)> d8;
  auto row = [&](int64_t j) { return blocks[j / kKvBlockQ8] + (j % kKvBlockQ8) * dim; };
  AccumulateRows(
      d, len, n_tokens, dim, acc, acc_stride,
      [&](int64_t j, int64_t c) { return hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, row(j) + c))); },
      [&](int64_t j, int64_t c) { return static_cast<float>(row(j)[c]); },
      [&](int64_t t, int64_t j) { return p[t * p_stride + j] * scales[j / kKvBlockQ8][j % kKvBlockQ8]; },
      [](int64_t, int64_t) {});
}

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace triplane::engine::cpu {

HWY_EXPORT(QuantizeQ8T);
HWY_EXPORT(ScoreBlocksQ8T);
HWY_EXPORT(AccumulateRowsQ8T);

float StoreKeyQ8(const float* k, int64_t dim, int64_t slot, uint8_t* block) {
  int8_t q[kMaxHeadDimQ8];
  const float scale = HWY_DYNAMIC_DISPATCH(QuantizeQ8T)(k, dim, q);
  for (int64_t e = 0; e < dim; ++e) {
    block[(e / 4) * 4 * kKvBlockQ8 + slot * 4 + e % 4] = static_cast<uint8_t>(q[e] + 128);
  }
  return scale;
}

float StoreValueQ8(const float* v, int64_t dim, int8_t* row) { return HWY_DYNAMIC_DISPATCH(QuantizeQ8T)(v, dim, row); }

void ScoreBlocksQ8(const float* q, int64_t q_stride, int64_t n_tokens, const uint8_t* const* blocks,
                   const float* const* scales, int64_t n_blocks, int64_t dim, float* out, int64_t out_stride) {
  HWY_DYNAMIC_DISPATCH(ScoreBlocksQ8T)(q, q_stride, n_tokens, blocks, scales, n_blocks, dim, out, out_stride);
}

void AccumulateRowsQ8(const float* p, int64_t p_stride, const int64_t* len, int64_t n_tokens,
                      const int8_t* const* blocks, const float* const* scales, int64_t dim, float* acc,
                      int64_t acc_stride) {
  HWY_DYNAMIC_DISPATCH(AccumulateRowsQ8T)(p, p_stride, len, n_tokens, blocks, scales, dim, acc, acc_stride);
}

}  // namespace triplane::engine::cpu
#endif  // HWY_ONCE
