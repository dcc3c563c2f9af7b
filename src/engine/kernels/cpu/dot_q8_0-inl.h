// Dot products of Q8_0 and Q4_0 weight rows with Q8_0 activation rows, per Highway
// target: one 32-element block per 256-bit vector, exact int32 block sums, then
// sum += (d_w * d_a) * block_sum in float (two independent accumulators).

#if defined(TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q8_0_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q8_0_INL_H_
#undef TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q8_0_INL_H_
#else
#define TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q8_0_INL_H_
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

// Q4_0 block -> 32 signed bytes q - 8 in element order (low nibbles, then high).
HWY_INLINE __m256i UnpackQ4_0(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i nibbles =
      _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
  return _mm256_sub_epi8(nibbles, _mm256_set1_epi8(8));
}

// `Unpack(block)` gives the weight block as 32 signed bytes.
template <typename Block, class Unpack>
HWY_INLINE float DotBlocksQ8_0(const Block* HWY_RESTRICT x, const BlockQ8_0* HWY_RESTRICT y,
                               int64_t nb, Unpack unpack) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i p0 = DotI8I8(unpack(x[b]), LoadI256(y[b].qs));
    const __m256i p1 = DotI8I8(unpack(x[b + 1]), LoadI256(y[b + 1].qs));
    const __m256 d0 = _mm256_set1_ps(HalfToFloat(x[b].d) * HalfToFloat(y[b].d));
    const __m256 d1 = _mm256_set1_ps(HalfToFloat(x[b + 1].d) * HalfToFloat(y[b + 1].d));
    acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(p0), acc0);
    acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(p1), acc1);
  }
  if (b < nb) {
    const __m256i p0 = DotI8I8(unpack(x[b]), LoadI256(y[b].qs));
    const __m256 d0 = _mm256_set1_ps(HalfToFloat(x[b].d) * HalfToFloat(y[b].d));
    acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(p0), acc0);
  }
  return SumLanes(_mm256_add_ps(acc0, acc1));
}

HWY_INLINE float DotQ8_0(const void* w, const void* a, int64_t n) {
  return DotBlocksQ8_0(static_cast<const BlockQ8_0*>(w), static_cast<const BlockQ8_0*>(a),
                       n / kQK8_0, [](const BlockQ8_0& blk) { return LoadI256(blk.qs); });
}

HWY_INLINE float DotQ4_0(const void* w, const void* a, int64_t n) {
  return DotBlocksQ8_0(static_cast<const BlockQ4_0*>(w), static_cast<const BlockQ8_0*>(a),
                       n / kQK4_0, [](const BlockQ4_0& blk) { return UnpackQ4_0(blk.qs); });
}

#else  // !TRIPLANE_X86_INT8: portable scalar blocks

HWY_INLINE float DotQ8_0(const void* w, const void* a, int64_t n) {
  return VecDotRef(GgmlType::kQ8_0, w, a, n);
}
HWY_INLINE float DotQ4_0(const void* w, const void* a, int64_t n) {
  return VecDotRef(GgmlType::kQ4_0, w, a, n);
}

#endif  // TRIPLANE_X86_INT8

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#endif  // TRIPLANE_ENGINE_KERNELS_CPU_DOT_Q8_0_INL_H_
