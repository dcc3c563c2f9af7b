// Dot product of Q6_K weight rows with Q8_K activation rows, per Highway target.
// Per super-block of 256: the 6-bit quants q in [0, 63] as unsigned bytes,
// int32 sum_j s[j] * <q_j, a_j> over 16 sub-blocks of 16, minus 32 * sum_j s[j] * sum(a_j)
// (Q8_K's bsums) for the -32 offset, times d.

#if defined(TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q6_K_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q6_K_INL_H_
#undef TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q6_K_INL_H_
#else
#define TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q6_K_INL_H_
#endif

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

HWY_INLINE float DotQ6K(const void* w, const void* a, int64_t n) {
  const auto* HWY_RESTRICT x = static_cast<const BlockQ6_K*>(w);
  const auto* HWY_RESTRICT y = static_cast<const BlockQ8_K*>(a);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m2 = _mm256_set1_epi8(0x30);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    int32_t offset_dot = 0;
    for (int j = 0; j < 16; ++j) offset_dot += x[b].scales[j] * y[b].bsums[j];

    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {  // 128 elements: 64 ql bytes, 32 qh bytes, 8 scales
      const __m256i ql0 = LoadI256(x[b].ql + 64 * h);
      const __m256i ql1 = LoadI256(x[b].ql + 64 * h + 32);
      const __m256i qh = LoadI256(x[b].qh + 32 * h);
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                             _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
      q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                             _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                             _mm256_and_si256(qh, m2));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                             _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
      const int8_t* sc = x[b].scales + 8 * h;
      for (int i = 0; i < 4; ++i) {
        // q <= 63 and |a| <= 127: the int16 pair sums cannot saturate.
        const __m256i p = _mm256_maddubs_epi16(q[i], LoadI256(y[b].qs + 128 * h + 32 * i));
        const __m256i s =
            _mm256_set_m128i(_mm_set1_epi16(sc[2 * i + 1]), _mm_set1_epi16(sc[2 * i]));
        sumi = MulAddI16Acc(sumi, p, s);
      }
    }
    sumi = _mm256_sub_epi32(sumi, _mm256_setr_epi32(32 * offset_dot, 0, 0, 0, 0, 0, 0, 0));
    const float d = HalfToFloat(x[b].d) * y[b].d;
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return SumLanes(acc);
}

#else  // !TRIPLANE_X86_INT8

HWY_INLINE float DotQ6K(const void* w, const void* a, int64_t n) {
  return VecDotRef(GgmlType::kQ6_K, w, a, n);
}

#endif  // TRIPLANE_X86_INT8

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#endif  // TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q6_K_INL_H_
