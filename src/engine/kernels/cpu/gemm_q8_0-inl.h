// Register-tiled mat-mat kernels for Q8_0 and Q4_0 weights with Q8_0 activations, for
// gemm_tile-inl.h's driver: one for AVX3_DL (AVX-512 VNNI) and one for AVX2 and AVX3
// (256-bit vpmaddubsw). Defines TRIPLANE_GEMM_Q8_0 to 1 on those targets and 0 elsewhere
// (the others keep the per-row VecDot loop).
//
// AVX3_DL: blocks are processed in pairs, one pair per 512-bit vector (lanes 0-7 block b, lanes
// 8-15 block b + 1). Packed weight row, per pair: 64 signed quants (Q4_0 unpacked to
// q - 8), 16 float scales (d_b x 8, d_b+1 x 8), 16 int32 corrections -128 * sum of each
// 4 quants. Packed activation row, per pair: 64 quants + 128 as unsigned bytes, 16 float
// scales. One vpdpbusd starting from the correction gives, in each lane, the same sum of
// 4 products as DotQ8_0's (sum(w * a) = sum(w * (a + 128)) - 128 * sum(w)); then, as
// there, acc += (d_w * d_a) * sum in float. Lanes 0-7 are DotBlocksQ8_0's acc0 (even
// blocks), lanes 8-15 its acc1 (odd blocks; an odd last block pairs with zero quants),
// and SumLanes16x16 adds them in its order: the outputs are bit-identical to VecDot.
//
// AVX2 and AVX3: DotBlocksQ8_0's own steps per block -- vpsignb, vpmaddubsw of |w| with
// the sign-adjusted activations, vpmaddwd, convert, acc += (d_w * d_a) * sum into acc0
// (even blocks) or acc1 (odd blocks), then SumLanes(acc0 + acc1) -- for a 2 x 2 sub-tile
// at a time (8 accumulators: 16 registers cannot hold a whole tile's 32). What the tile
// saves over VecDot is the per-row work: |w| and the fp16 scales are converted once per
// packed row instead of once per (row, activation) pair.

#if defined(TRIPLANE_ENGINE_KERNELS_CPU_GEMM_Q8_0_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TRIPLANE_ENGINE_KERNELS_CPU_GEMM_Q8_0_INL_H_
#undef TRIPLANE_ENGINE_KERNELS_CPU_GEMM_Q8_0_INL_H_
#else
#define TRIPLANE_ENGINE_KERNELS_CPU_GEMM_Q8_0_INL_H_
#endif

#include <cstdint>

#include "engine/gguf/ggml_type.h"
#include "engine/kernels/cpu/dot_q8_0-inl.h"
#include "engine/kernels/cpu/gemm_tile-inl.h"
#include "engine/kernels/cpu/int8_x86-inl.h"
#include "engine/kernels/cpu/quant.h"
#include "hwy/highway.h"

#undef TRIPLANE_GEMM_Q8_0
#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3
#define TRIPLANE_GEMM_Q8_0 1
#else
#define TRIPLANE_GEMM_Q8_0 0
#endif

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")
#endif
namespace triplane::engine::cpu {
namespace HWY_NAMESPACE {

#if HWY_TARGET == HWY_AVX3_DL

class GemmQ8_0 {
 public:
  // REQUIRES: type is Q8_0 or Q4_0; cols a multiple of 32.
  GemmQ8_0(GgmlType type, int64_t cols)
      : q4_(type == GgmlType::kQ4_0), blocks_(cols / kQK8_0), pairs_((blocks_ + 1) / 2) {}

  int64_t ActCacheBytes() const { return pairs_ * kActPair; }

  void PackActs(const uint8_t* const rows[], int64_t n) {
    act_ = GemmScratch(static_cast<size_t>(n * pairs_ * kActPair), 0);
    for (int64_t j = 0; j < n; ++j) PackAct(rows[j], act_ + j * pairs_ * kActPair);
  }

  void PackWeights(const uint8_t* const rows[4]) {
    w_ = GemmScratch(static_cast<size_t>(4 * pairs_ * kWeightPair), 1);
    for (int i = 0; i < 4; ++i) PackWeight(rows[i], w_ + i * pairs_ * kWeightPair);
  }

  void Tile(const int64_t acts[4], float out[16]) const {
    const uint8_t* a[4];
    const uint8_t* w[4];
    for (int j = 0; j < 4; ++j) a[j] = act_ + acts[j] * pairs_ * kActPair;
    for (int i = 0; i < 4; ++i) w[i] = w_ + i * pairs_ * kWeightPair;
    __m512 acc[16];
    for (__m512& v : acc) v = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs_; ++p) {
      __m512i aq[4];
      __m512 ad[4];
      for (int j = 0; j < 4; ++j) {
        const uint8_t* ap = a[j] + p * kActPair;
        aq[j] = _mm512_loadu_si512(ap);
        ad[j] = _mm512_loadu_ps(ap + 64);
      }
      for (int i = 0; i < 4; ++i) {
        const uint8_t* wp = w[i] + p * kWeightPair;
        const __m512i wq = _mm512_loadu_si512(wp);
        const __m512 wd = _mm512_loadu_ps(wp + 64);
        const __m512i corr = _mm512_loadu_si512(wp + 128);
        for (int j = 0; j < 4; ++j) {
          const __m512i sum = _mm512_dpbusd_epi32(corr, aq[j], wq);
          acc[4 * i + j] =
              _mm512_fmadd_ps(_mm512_mul_ps(wd, ad[j]), _mm512_cvtepi32_ps(sum), acc[4 * i + j]);
        }
      }
    }
    SumLanes16x16(acc, out);
  }

 private:
  static constexpr int64_t kWeightPair = 192;  // quants, scales, corrections
  static constexpr int64_t kActPair = 128;     // quants, scales

  void PackWeight(const uint8_t* src, uint8_t* dst) const {
    const __m512i k128 = _mm512_set1_epi8(static_cast<char>(0x80));
    for (int64_t p = 0; p < pairs_; ++p) {
      __m256i q[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
      float d[2] = {0.0f, 0.0f};
      for (int64_t h = 0; h < 2 && 2 * p + h < blocks_; ++h) {
        const int64_t b = 2 * p + h;
        if (q4_) {
          const auto& blk = reinterpret_cast<const BlockQ4_0*>(src)[b];
          q[h] = UnpackQ4_0(blk.qs);
          d[h] = HalfToFloat(blk.d);
        } else {
          const auto& blk = reinterpret_cast<const BlockQ8_0*>(src)[b];
          q[h] = LoadI256(blk.qs);
          d[h] = HalfToFloat(blk.d);
        }
      }
      const __m512i qv = _mm512_inserti64x4(_mm512_castsi256_si512(q[0]), q[1], 1);
      const __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(),
                                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), k128, qv));
      uint8_t* o = dst + p * kWeightPair;
      _mm512_storeu_si512(o, qv);
      _mm512_storeu_ps(o + 64, Halves(d[0], d[1]));
      _mm512_storeu_si512(o + 128, corr);
    }
  }

  void PackAct(const uint8_t* src, uint8_t* dst) const {
    const auto* y = reinterpret_cast<const BlockQ8_0*>(src);
    const __m256i k128 = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int64_t p = 0; p < pairs_; ++p) {
      const int64_t b = 2 * p;
      const bool second = b + 1 < blocks_;
      const __m256i q0 = _mm256_xor_si256(LoadI256(y[b].qs), k128);
      const __m256i q1 = second ? _mm256_xor_si256(LoadI256(y[b + 1].qs), k128) : k128;
      uint8_t* o = dst + p * kActPair;
      _mm512_storeu_si512(o, _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1));
      _mm512_storeu_ps(o + 64,
                       Halves(HalfToFloat(y[b].d), second ? HalfToFloat(y[b + 1].d) : 0.0f));
    }
  }

  static __m512 Halves(float lo, float hi) {
    return _mm512_insertf32x8(_mm512_set1_ps(lo), _mm256_set1_ps(hi), 1);
  }

  bool q4_;
  int64_t blocks_, pairs_;
  uint8_t* act_ = nullptr;  // [panel, pairs_ * kActPair]
  uint8_t* w_ = nullptr;    // [4, pairs_ * kWeightPair]
};

#elif TRIPLANE_GEMM_Q8_0  // AVX2, AVX3

class GemmQ8_0 {
 public:
  // REQUIRES: type is Q8_0 or Q4_0; cols a multiple of 32.
  GemmQ8_0(GgmlType type, int64_t cols) : q4_(type == GgmlType::kQ4_0), blocks_(cols / kQK8_0) {}

  int64_t ActCacheBytes() const { return blocks_ * kActBlock; }

  // Packed activation row: blocks_ x 32 quants, then blocks_ float scales.
  void PackActs(const uint8_t* const rows[], int64_t n) {
    act_ = GemmScratch(static_cast<size_t>(n * blocks_ * kActBlock), 0);
    for (int64_t j = 0; j < n; ++j) {
      const auto* y = reinterpret_cast<const BlockQ8_0*>(rows[j]);
      uint8_t* q = act_ + j * blocks_ * kActBlock;
      float* d = reinterpret_cast<float*>(q + blocks_ * kQK8_0);
      for (int64_t b = 0; b < blocks_; ++b) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * kQK8_0), LoadI256(y[b].qs));
        d[b] = HalfToFloat(y[b].d);
      }
    }
  }

  // Packed weight row: blocks_ x (32 bytes |w|, 32 signed quants w), then blocks_ float
  // scales.
  void PackWeights(const uint8_t* const rows[4]) {
    w_ = GemmScratch(static_cast<size_t>(4 * blocks_ * kWeightBlock), 1);
    for (int i = 0; i < 4; ++i) {
      uint8_t* q = w_ + i * blocks_ * kWeightBlock;
      float* d = reinterpret_cast<float*>(q + blocks_ * 2 * kQK8_0);
      for (int64_t b = 0; b < blocks_; ++b) {
        __m256i w;
        if (q4_) {
          const auto& blk = reinterpret_cast<const BlockQ4_0*>(rows[i])[b];
          w = UnpackQ4_0(blk.qs);
          d[b] = HalfToFloat(blk.d);
        } else {
          const auto& blk = reinterpret_cast<const BlockQ8_0*>(rows[i])[b];
          w = LoadI256(blk.qs);
          d[b] = HalfToFloat(blk.d);
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 64), _mm256_sign_epi8(w, w));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 64 + 32), w);
      }
    }
  }

  void Tile(const int64_t acts[4], float out[16]) const {
    for (int i = 0; i < 4; i += 2) {
      for (int j = 0; j < 4; j += 2) SubTile(i, acts[j], acts[j + 1], out + 4 * i + j);
    }
  }

 private:
  static constexpr int64_t kWeightBlock = 2 * kQK8_0 + 4;  // |w|, w, scale
  static constexpr int64_t kActBlock = kQK8_0 + 4;         // quants, scale

  // Rows i, i + 1 against activation rows j0, j1: out[0], out[1] row i, out[4], out[5]
  // row i + 1.
  HWY_INLINE void SubTile(int i, int64_t j0, int64_t j1, float* out) const {
    const uint8_t* wq[2];
    const float* wd[2];
    const uint8_t* aq[2];
    const float* ad[2];
    for (int r = 0; r < 2; ++r) {
      wq[r] = w_ + (i + r) * blocks_ * kWeightBlock;
      wd[r] = reinterpret_cast<const float*>(wq[r] + blocks_ * 2 * kQK8_0);
    }
    aq[0] = act_ + j0 * blocks_ * kActBlock;
    aq[1] = act_ + j1 * blocks_ * kActBlock;
    for (int c = 0; c < 2; ++c) ad[c] = reinterpret_cast<const float*>(aq[c] + blocks_ * kQK8_0);
    __m256 acc[2][2][2];  // [row][activation][block parity]
    for (auto& row : acc) {
      for (auto& pair : row) pair[0] = pair[1] = _mm256_setzero_ps();
    }
    const __m256i ones = _mm256_set1_epi16(1);
    auto block = [&](int64_t b, int parity) HWY_ATTR {
      __m256i a[2];
      for (int c = 0; c < 2; ++c) a[c] = LoadI256(aq[c] + b * kQK8_0);
      for (int r = 0; r < 2; ++r) {
        const __m256i abs_w = LoadI256(wq[r] + b * 64);
        const __m256i w = LoadI256(wq[r] + b * 64 + 32);
        for (int c = 0; c < 2; ++c) {
          const __m256i sum =
              _mm256_madd_epi16(_mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(a[c], w)), ones);
          const __m256 d = _mm256_set1_ps(wd[r][b] * ad[c][b]);
          acc[r][c][parity] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum), acc[r][c][parity]);
        }
      }
    };
    int64_t b = 0;
    for (; b + 2 <= blocks_; b += 2) {
      block(b, 0);
      block(b + 1, 1);
    }
    if (b < blocks_) block(b, 0);
    for (int r = 0; r < 2; ++r) {
      for (int c = 0; c < 2; ++c) {
        out[4 * r + c] = SumLanes(_mm256_add_ps(acc[r][c][0], acc[r][c][1]));
      }
    }
  }

  bool q4_;
  int64_t blocks_;
  uint8_t* act_ = nullptr;  // [panel, blocks_ * kActBlock]
  uint8_t* w_ = nullptr;    // [4, blocks_ * kWeightBlock]
};

#endif  // TRIPLANE_GEMM_Q8_0

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#endif  // TRIPLANE_ENGINE_KERNELS_CPU_GEMM_Q8_0_INL_H_
