// Dot product of Q4_K weight rows with Q8_K activation rows, per Highway target.
// Per super-block of 256: int32 sum_j sc[j] * <q_j, a_j> over 8 sub-blocks of 32 with
// the 4-bit quants as unsigned bytes, then d * that - dmin * sum_j m[j] * sum(a_j), the
// activation sums taken from Q8_K's bsums.

#if defined(TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q4_K_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q4_K_INL_H_
#undef TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q4_K_INL_H_
#else
#define TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q4_K_INL_H_
#endif

#include <cmath>
#include <cstdint>

#include "engine/kernels/cpu/int8_x86-inl.h"
#include "engine/kernels/cpu/matmul.h"
#include "engine/kernels/cpu/quant.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")
#endif
namespace triplane::engine::cpu {
namespace HWY_NAMESPACE {

#if TRIPLANE_X86_INT8

HWY_INLINE float DotQ4K(const void* w, const void* a, int64_t n) {
  const auto* HWY_RESTRICT x = static_cast<const BlockQ4_K*>(w);
  const auto* HWY_RESTRICT y = static_cast<const BlockQ8_K*>(a);
  const __m256i low_mask = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  float sum_mins = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) GetScaleMinK4(j, x[b].scales, &sc[j], &m[j]);
    int32_t mins_dot = 0;
    for (int j = 0; j < 8; ++j) mins_dot += m[j] * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);

    __m256i sumi = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {  // 64 elements: sub-blocks 2c (low nibbles), 2c+1 (high)
      const __m256i q = LoadI256(x[b].qs + 32 * c);
      const __m256i lo = _mm256_and_si256(q, low_mask);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low_mask);
      // q <= 15 and |a| <= 127: the int16 pair sums cannot saturate.
      const __m256i p_lo = _mm256_maddubs_epi16(lo, LoadI256(y[b].qs + 64 * c));
      const __m256i p_hi = _mm256_maddubs_epi16(hi, LoadI256(y[b].qs + 64 * c + 32));
      sumi = MulAddI16Acc(sumi, p_lo, _mm256_set1_epi16(sc[2 * c]));
      sumi = MulAddI16Acc(sumi, p_hi, _mm256_set1_epi16(sc[2 * c + 1]));
    }
    const float d = HalfToFloat(x[b].d) * y[b].d;
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    // An explicit fused multiply-add, so that the result does not depend on whether the
    // compiler contracts (it does at -O3, not always at -O1); the tiled MatMul matches it.
    sum_mins = std::fma(HalfToFloat(x[b].dmin) * y[b].d, static_cast<float>(mins_dot), sum_mins);
  }
  return SumLanes(acc) - sum_mins;
}

#else  // !TRIPLANE_X86_INT8

HWY_INLINE float DotQ4K(const void* w, const void* a, int64_t n) {
  return VecDotRef(GgmlType::kQ4_K, w, a, n);
}

#endif  // TRIPLANE_X86_INT8

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#endif  // TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q4_K_INL_H_
