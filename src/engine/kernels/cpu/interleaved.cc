// Per-target kernels over interleaved weights (interleaved.h) and their dispatch. Only
// AVX3_DL (AVX-512 VNNI) has SIMD kernels; every other target runs the scalar kernel,
// which computes the same bits.

// Highway 1.0.3 builds AVX3_DL (AVX-512 VNNI/VBMI...) only on request.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif

#include "engine/kernels/cpu/interleaved.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/kernels/cpu/fp16.h"
#include "engine/kernels/cpu/interleaved_internal.h"
#include "engine/kernels/cpu/quant.h"

// foreach_target.h must come before the per-target headers.
// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/cpu/interleaved.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

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

#if HWY_TARGET == HWY_AVX3_DL

using internal::ActBlockQ8_0;
using internal::ActBlockQ8_K;

constexpr int64_t kMaxTileActs = 16;  // activation rows per register tile (Q8_0/Q4_0; Q4_K: 4)
constexpr int64_t kPanelActs = 64;   // activation rows per pass over the weights
constexpr int64_t kTileBlockBytes = kMaxTileActs * 32;  // one block of a packed Q8_0 tile

HWY_INLINE __m512i Broadcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm512_set1_epi32(v);
}

// J activation rows of one tile (PackTilesQ8_0) against one 16-row group of Q4_0 (kQ4
// true) or Q8_0 weights. Per block, each weight register meets every activation row
// before the next is used: the J integer sums are J independent chains (the
// multiply-add's latency hidden), and J = 16 reads a group from memory once for a
// 16-sequence decode step. The tile keeps a block's J rows of quants side by side, so
// every activation load is one base register plus a constant. The float accumulators
// are a stack array (J sums and the weight registers already fill most of the 32 vector
// registers; the compiler keeps in registers what still fits).
// `next`, when set, is the next group: its lines are prefetched block by block, so that
// the first pass over a group from memory overlaps with the arithmetic.
template <int J, bool kQ4>
HWY_INLINE void GroupQ8_0(const uint8_t* HWY_RESTRICT g, int64_t blocks, const uint8_t* HWY_RESTRICT tile,
                          const ActBlockQ8_0* HWY_RESTRICT info, float* const out[J], const uint8_t* next) {
  constexpr int64_t kBlock = kQ4 ? internal::kGroupBlockQ4_0 : internal::kGroupBlockQ8_0;
  const __m512i low = _mm512_set1_epi8(0x0F);
  alignas(64) float acc[J][16] = {};
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* p = g + b * kBlock;
    if (next != nullptr) {
      for (int64_t line = 0; line < kBlock; line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(next + b * kBlock + line), _MM_HINT_T0);
      }
    }
    __m512i w[8];  // w[k]: elements 4k..4k+3 of the 16 rows, unsigned
    if (kQ4) {
      #pragma GCC unroll 16
      for (int s = 0; s < 4; ++s) {
        const __m512i raw = _mm512_loadu_si512(p + 32 + 64 * s);
        w[s] = _mm512_and_si512(raw, low);
        w[4 + s] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low);
      }
    } else {
      #pragma GCC unroll 16
      for (int k = 0; k < 8; ++k) w[k] = _mm512_loadu_si512(p + 32 + 64 * k);
    }
    const uint8_t* a = tile + b * kTileBlockBytes;
    const ActBlockQ8_0* in = info + b * kMaxTileActs;
    __m512i sum[J];
    #pragma GCC unroll 16
    for (int j = 0; j < J; ++j) sum[j] = _mm512_set1_epi32(in[j].correction);
    #pragma GCC unroll 16
    for (int k = 0; k < 8; ++k) {
      #pragma GCC unroll 16
      for (int j = 0; j < J; ++j) sum[j] = _mm512_dpbusd_epi32(sum[j], w[k], Broadcast32(a + 32 * j + 4 * k));
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    #pragma GCC unroll 16
    for (int j = 0; j < J; ++j) {
      const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(in[j].d));
      _mm512_store_ps(acc[j], _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sum[j]), _mm512_load_ps(acc[j])));
    }
  }
  #pragma GCC unroll 16
  for (int j = 0; j < J; ++j) _mm512_storeu_ps(out[j], _mm512_load_ps(acc[j]));
}

// Unpacks the 6-bit scales and mins of one Q4_K group block (12 planes of 16 rows):
// scales[s] as 16 int32 lanes, mins of sub-blocks (2t, 2t + 1) as int16 pairs per lane.
HWY_INLINE void UnpackScalesQ4K(const uint8_t* planes, __m512i scales[8], __m512i min_pairs[4]) {
  __m128i pl[12];
  #pragma GCC unroll 16
  for (int i = 0; i < 12; ++i) pl[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(planes + 16 * i));
  const __m128i m63 = _mm_set1_epi8(63), m15 = _mm_set1_epi8(15), m3 = _mm_set1_epi8(3);
  auto top2 = [&](__m128i v) {  // (v >> 6) << 4 per byte
    return _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(v, 6), m3), 4);
  };
  __m128i sc[8], m[8];
  #pragma GCC unroll 16
  for (int j = 0; j < 4; ++j) {
    sc[j] = _mm_and_si128(pl[j], m63);
    m[j] = _mm_and_si128(pl[j + 4], m63);
  }
  #pragma GCC unroll 16
  for (int j = 4; j < 8; ++j) {
    sc[j] = _mm_or_si128(_mm_and_si128(pl[j + 4], m15), top2(pl[j - 4]));
    m[j] = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(pl[j + 4], 4), m15), top2(pl[j]));
  }
  #pragma GCC unroll 16
  for (int j = 0; j < 8; ++j) scales[j] = _mm512_cvtepu8_epi32(sc[j]);
  #pragma GCC unroll 16
  for (int t = 0; t < 4; ++t) {
    const __m128i lo = _mm_unpacklo_epi8(m[2 * t], m[2 * t + 1]);
    const __m128i hi = _mm_unpackhi_epi8(m[2 * t], m[2 * t + 1]);
    min_pairs[t] = _mm512_cvtepu8_epi16(_mm256_set_m128i(hi, lo));
  }
}

// J activation rows against one 16-row group of Q4_K weights.
template <int J>
HWY_INLINE void GroupQ4K(const uint8_t* HWY_RESTRICT g, int64_t blocks,
                         const uint8_t* const act[J], const ActBlockQ8_K* const info[J],
                         float* const out[J]) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  __m512 acc[J], acc_min[J];
  #pragma GCC unroll 16
  for (int j = 0; j < J; ++j) acc[j] = acc_min[j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* p = g + b * internal::kGroupBlockQ4_K;
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512 dmin =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + internal::kQ4KDmin)));
    __m512i scales[8], min_pairs[4];
    UnpackScalesQ4K(p + internal::kQ4KScalePlanes, scales, min_pairs);
    __m512i total[J];
    #pragma GCC unroll 16
    for (int j = 0; j < J; ++j) total[j] = _mm512_setzero_si512();
    #pragma GCC unroll 16
    for (int s = 0; s < 8; ++s) {
      const uint8_t* q = p + internal::kQ4KQuants + 64 * 8 * (s / 2);
      __m512i w[8];
      #pragma GCC unroll 16
      for (int k = 0; k < 8; ++k) {
        const __m512i raw = _mm512_loadu_si512(q + 64 * k);
        w[k] = _mm512_and_si512((s & 1) ? _mm512_srli_epi16(raw, 4) : raw, low);
      }
      #pragma GCC unroll 16
      for (int j = 0; j < J; ++j) {
        const int8_t* a = reinterpret_cast<const BlockQ8_K*>(act[j])[b].qs + 32 * s;
        __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
        #pragma GCC unroll 16
        for (int k = 0; k < 8; k += 2) {
          s0 = _mm512_dpbusd_epi32(s0, w[k], Broadcast32(a + 4 * k));
          s1 = _mm512_dpbusd_epi32(s1, w[k + 1], Broadcast32(a + 4 * k + 4));
        }
        total[j] = _mm512_add_epi32(total[j], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), scales[s]));
      }
    }
    #pragma GCC unroll 16
    for (int j = 0; j < J; ++j) {
      const ActBlockQ8_K& y = info[j][b];
      __m512i mins = _mm512_setzero_si512();
      #pragma GCC unroll 16
      for (int t = 0; t < 4; ++t) {
        mins = _mm512_dpwssd_epi32(mins, min_pairs[t], _mm512_set1_epi32(y.sub_sum_pairs[t]));
      }
      const __m512 da = _mm512_set1_ps(y.d);
      acc[j] = _mm512_fmadd_ps(_mm512_mul_ps(dw, da), _mm512_cvtepi32_ps(total[j]), acc[j]);
      acc_min[j] = _mm512_fmadd_ps(_mm512_mul_ps(dmin, da), _mm512_cvtepi32_ps(mins), acc_min[j]);
    }
  }
  #pragma GCC unroll 16
  for (int j = 0; j < J; ++j) _mm512_storeu_ps(out[j], _mm512_sub_ps(acc[j], acc_min[j]));
}

// Calls f(std::integral_constant<int, nj>()) for 1 <= nj <= kTile.
template <int kTile, class F>
HWY_INLINE void DispatchTile(int64_t nj, F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) {
    ((nj == I + 1 ? (f(std::integral_constant<int, I + 1>()), 0) : 0), ...);
  }(std::make_integer_sequence<int, kTile>());
}

// Panels of activation rows; within a panel, every 16-row group (read from memory once
// per panel) against tiles of up to kTile rows: group_fn(nj, group, j0, out, next) for
// the tile of rows [j0, j0 + nj).
template <int kTile, class GroupFn>
void Drive(const uint8_t* packed, int64_t group_bytes, int64_t n_act, float* out, int64_t out_stride,
           int64_t row_begin, int64_t row_end, GroupFn group_fn) {
  static_assert(kPanelActs % kTile == 0);
  for (int64_t a0 = 0; a0 < n_act; a0 += kPanelActs) {
    const int64_t a_end = std::min(n_act, a0 + kPanelActs);
    const int64_t g_end = row_end / kInterleaveRows;
    for (int64_t g = row_begin / kInterleaveRows; g < g_end; ++g) {
      const uint8_t* gp = packed + g * group_bytes;
      for (int64_t j0 = a0; j0 < a_end; j0 += kTile) {
        const uint8_t* next = j0 == a0 && g + 1 < g_end ? gp + group_bytes : nullptr;
        const int64_t nj = std::min<int64_t>(kTile, a_end - j0);
        float* o[kTile];
        for (int64_t j = 0; j < nj; ++j) o[j] = out + (j0 + j) * out_stride + g * kInterleaveRows;
        DispatchTile<kTile>(nj, [&](auto j) { group_fn(j, gp, j0, o, next); });
      }
    }
  }
}

// Q8_0 activation rows (for Q8_0 or Q4_0 weights) repacked in tiles of kMaxTileActs rows:
// tile t, block b holds rows 16t .. 16t + 15's quants of block b side by side
// (kTileBlockBytes at quants[(t * blocks + b) * kTileBlockBytes]) and their summaries
// (at info[(t * blocks + b) * kMaxTileActs]). Rows past n_act are left unset.
void PackTilesQ8_0(GgmlType type, const uint8_t* acts, int64_t n_act, int64_t stride, int64_t blocks,
                   std::vector<uint8_t>& quants, std::vector<ActBlockQ8_0>& info) {
  const int64_t tiles = (n_act + kMaxTileActs - 1) / kMaxTileActs;
  quants.resize(static_cast<size_t>(tiles * blocks * kTileBlockBytes));
  info.resize(static_cast<size_t>(tiles * blocks * kMaxTileActs));
  const int32_t bias = internal::CorrectionBias(type);
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t r = 0; r < n_act; ++r) {
    const auto* y = reinterpret_cast<const BlockQ8_0*>(acts + r * stride);
    const int64_t t = r / kMaxTileActs, j = r % kMaxTileActs;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t slot = (t * blocks + b) * kMaxTileActs + j;
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[b].qs));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(&quants[static_cast<size_t>(slot * 32)]), q);
      // The block's sum of quants: 1 * q summed in fours, then across the lanes.
      const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);
      const __m128i half = _mm_add_epi32(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
      const __m128i quad = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0x4E));
      const int32_t sum = _mm_cvtsi128_si32(_mm_add_epi32(quad, _mm_shuffle_epi32(quad, 0xB1)));
      info[static_cast<size_t>(slot)] = {Fp16ToFp32(y[b].d), bias * sum};
    }
  }
}

#endif  // HWY_TARGET == HWY_AVX3_DL

void MatMulInterleavedT(GgmlType type, const void* packed, int64_t cols, const void* activations,
                        int64_t n_act, int64_t stride, float* out, int64_t out_stride,
                        int64_t row_begin, int64_t row_end) {
  const auto* w = static_cast<const uint8_t*>(packed);
  const auto* acts = static_cast<const uint8_t*>(activations);
#if HWY_TARGET == HWY_AVX3_DL
  const int64_t group_bytes = kInterleaveRows * RowBytes(type, cols);
  if (type == GgmlType::kQ4_K) {
    thread_local std::vector<ActBlockQ8_K> info;
    const int64_t blocks = internal::SummarizeActsQ8_K(acts, n_act, stride, cols, info);
    Drive<4>(w, group_bytes, n_act, out, out_stride, row_begin, row_end,
             [&](auto j, const uint8_t* gp, int64_t j0, float* const* o, const uint8_t*) {
               constexpr int J = decltype(j)::value;
               const uint8_t* a[J];
               const ActBlockQ8_K* in[J];
               for (int i = 0; i < J; ++i) {
                 a[i] = acts + (j0 + i) * stride;
                 in[i] = info.data() + (j0 + i) * blocks;
               }
               GroupQ4K<J>(gp, blocks, a, in, o);
             });
    return;
  }
  thread_local std::vector<uint8_t> tiles;
  thread_local std::vector<ActBlockQ8_0> info;
  const int64_t blocks = cols / kQK8_0;
  PackTilesQ8_0(type, acts, n_act, stride, blocks, tiles, info);
  const bool q4 = type == GgmlType::kQ4_0;
  Drive<kMaxTileActs>(w, group_bytes, n_act, out, out_stride, row_begin, row_end,
                      [&](auto j, const uint8_t* gp, int64_t j0, float* const* o, const uint8_t* next) {
                        const int64_t tile = j0 / kMaxTileActs * blocks;
                        const uint8_t* quants = tiles.data() + tile * kTileBlockBytes;
                        const ActBlockQ8_0* in = info.data() + tile * kMaxTileActs;
                        if (q4) {
                          GroupQ8_0<decltype(j)::value, true>(gp, blocks, quants, in, o, next);
                        } else {
                          GroupQ8_0<decltype(j)::value, false>(gp, blocks, quants, in, o, next);
                        }
                      });
#else
  internal::MatMulInterleavedScalar(type, w, cols, acts, n_act, stride, out, out_stride,
                                    row_begin, row_end);
#endif
}

bool FastT() { return HWY_TARGET == HWY_AVX3_DL; }

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace triplane::engine::cpu {

HWY_EXPORT(MatMulInterleavedT);
HWY_EXPORT(FastT);

bool InterleavedKernelsFast() { return HWY_DYNAMIC_DISPATCH(FastT)(); }

void MatMulInterleaved(GgmlType type, const void* packed, int64_t /*rows*/, int64_t cols,
                       const void* activations, int64_t n_act, int64_t act_stride_bytes,
                       float* out, int64_t out_stride, int64_t row_begin, int64_t row_end) {
  HWY_DYNAMIC_DISPATCH(MatMulInterleavedT)
  (type, packed, cols, activations, n_act, act_stride_bytes, out, out_stride, row_begin, row_end);
}

}  // namespace triplane::engine::cpu
#endif  // HWY_ONCE
