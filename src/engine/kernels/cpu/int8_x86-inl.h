// x86 int8 dot-product primitives on 256-bit vectors, per Highway target: Highway 1.0.3
// has no int8 x int8 -> int32 multiply-add, so these use AVX2 vpmaddubsw/vpmaddwd and,
// on AVX3_DL, AVX-512 VNNI vpdpbusd. Defines TRIPLANE_X86_INT8 to 1 for AVX2, AVX3 and
// AVX3_DL; other targets fall back to scalar block code.
//
// Includers targeting AVX3_DL must enable "avx512vnni" after HWY_BEFORE_NAMESPACE()
// (Highway 1.0.3's AVX3_DL target string names only the VEX "avxvnni") so that these
// helpers inline into their kernels. Because that string enables AVX-VNNI, GCC encodes
// 256-bit vpdpbusd as VEX, which CPUs with AVX-512 VNNI but no AVX-VNNI (Ice Lake,
// Zen 4) fault on; the helpers therefore issue the 512-bit (EVEX-only) form and use the
// low half.

#if defined(TRIPLANE_ENGINE_KERNELS_CPU_INT8_X86_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TRIPLANE_ENGINE_KERNELS_CPU_INT8_X86_INL_H_
#undef TRIPLANE_ENGINE_KERNELS_CPU_INT8_X86_INL_H_
#else
#define TRIPLANE_ENGINE_KERNELS_CPU_INT8_X86_INL_H_
#endif

#include "hwy/highway.h"

#undef TRIPLANE_X86_INT8
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define TRIPLANE_X86_INT8 1
#include <immintrin.h>
#else
#define TRIPLANE_X86_INT8 0
#endif

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")
#endif
namespace triplane::engine::cpu {
namespace HWY_NAMESPACE {

#if TRIPLANE_X86_INT8

HWY_INLINE __m256i LoadI256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// acc[k] + sum_{i<4} u[4k + i] * s[4k + i]; u unsigned bytes, s signed bytes. On AVX2 and
// AVX3 the pairwise int16 step saturates, so u * s pairs must stay within int16: true
// for |u| <= 128 with |s| <= 127, and for u <= 63 with any s.
HWY_INLINE __m256i DotU8I8Acc(__m256i acc, __m256i u, __m256i s) {
#if HWY_TARGET == HWY_AVX3_DL
  return _mm512_castsi512_si256(_mm512_dpbusd_epi32(
      _mm512_castsi256_si512(acc), _mm512_castsi256_si512(u), _mm512_castsi256_si512(s)));
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// Signed x signed bytes via |x| and sign(x) * y. REQUIRES: y != -128 where x != 0
// (activations from QuantizeActivations are in [-127, 127]).
HWY_INLINE __m256i DotI8I8(__m256i x, __m256i y) {
  return DotU8I8Acc(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// acc[k] + p[2k] * s[2k] + p[2k + 1] * s[2k + 1] on int16 lanes.
HWY_INLINE __m256i MulAddI16Acc(__m256i acc, __m256i p, __m256i s) {
#if HWY_TARGET == HWY_AVX3_DL
  return _mm512_castsi512_si256(_mm512_dpwssd_epi32(
      _mm512_castsi256_si512(acc), _mm512_castsi256_si512(p), _mm512_castsi256_si512(s)));
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, s));
#endif
}

HWY_INLINE float SumLanes(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

HWY_INLINE float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

#endif  // TRIPLANE_X86_INT8

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#endif  // TRIPLANE_ENGINE_KERNELS_CPU_INT8_X86_INL_H_
