// Register-tiled mat-mat kernel for Q4_K and Q6_K weights with Q8_K activations, for
// gemm_tile-inl.h's driver. AVX3 and AVX3_DL (512-bit AVX-512BW; VNNI vpdpwssd on
// AVX3_DL): defines TRIPLANE_GEMM_K_QUANT to 1 there and 0 elsewhere (those targets keep
// the per-row VecDot loop).
//
// Bit-identical to DotQ4K / DotQ6K (dot_q4_k-inl.h, dot_q6_k-inl.h). Per super-block: the
// unsigned quants times the activation bytes in int16 pairs (vpmaddubsw; no saturation:
// q <= 63, |a| <= 127), times the sub-block scales into int32; the two 256-bit halves of
// those 512-bit sums are added into VecDot's 8 lanes (exact integers); Q6_K subtracts
// 32 * sum_j s[j] * bsums[j] from lane 0; acc += (d_w * d_a) * lanes in float. Q4_K's
// separate float sum of dmin_w * d_a * sum_j m[j] * (bsums[2j] + bsums[2j + 1]) and Q6_K's
// offsets are computed once per weight tile for the whole panel, 16 activations per
// vector (PackWeights), rather than per tile.
//
// Packed weight row, per super-block (kSuperBytes): 256 quants as bytes in element order;
// 4 vectors of 32 int16 scales, one per 64 elements, each lane the scale of its element
// pair; 16 int16 bsums multipliers (Q4_K: m[k / 2]; Q6_K: s[k]); float d, float dmin.
// Activation quants are copied to 64-byte aligned rows (BlockQ8_K's are 4 bytes off).

#if defined(TRIPLANE_ENGINE_KERNELS_CPU_GEMM_K_QUANT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TRIPLANE_ENGINE_KERNELS_CPU_GEMM_K_QUANT_INL_H_
#undef TRIPLANE_ENGINE_KERNELS_CPU_GEMM_K_QUANT_INL_H_
#else
#define TRIPLANE_ENGINE_KERNELS_CPU_GEMM_K_QUANT_INL_H_
#endif

#include <cstdint>
#include <cstring>

#include "engine/gguf/ggml_type.h"
#include "engine/kernels/cpu/gemm_tile-inl.h"
#include "engine/kernels/cpu/int8_x86-inl.h"
#include "engine/kernels/cpu/quant.h"
#include "hwy/highway.h"

#undef TRIPLANE_GEMM_K_QUANT
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define TRIPLANE_GEMM_K_QUANT 1
#else
#define TRIPLANE_GEMM_K_QUANT 0
#endif

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")
#endif
namespace triplane::engine::cpu {
namespace HWY_NAMESPACE {

#if TRIPLANE_GEMM_K_QUANT

// acc[k] + p[2k] * s[2k] + p[2k + 1] * s[2k + 1] on 32 int16 lanes.
HWY_INLINE __m512i MulAddI16x32(__m512i acc, __m512i p, __m512i s) {
#if HWY_TARGET == HWY_AVX3_DL
  return _mm512_dpwssd_epi32(acc, p, s);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(p, s));
#endif
}

class GemmKQuant {
 public:
  // REQUIRES: type is Q4_K or Q6_K; cols a multiple of 256.
  GemmKQuant(GgmlType type, int64_t cols) : q6_(type == GgmlType::kQ6_K), supers_(cols / kQK_K) {}

  int64_t ActCacheBytes() const { return supers_ * static_cast<int64_t>(sizeof(BlockQ8_K)); }

  // Copies the quants to [activation][super-block][256], and per super-block the bsums
  // as int16 pairs and the scales d transposed to [super-block][pair][activation] for
  // PackWeights' vectors.
  void PackActs(const uint8_t* const rows[], int64_t n) {
    padded_ = (n + 15) / 16 * 16;
    const int64_t quant_bytes = n * supers_ * kQK_K;
    const int64_t words = supers_ * (kPairs + 1) * padded_;
    uint8_t* pack = GemmScratch(static_cast<size_t>(quant_bytes + words * 4), 0);
    act_q_ = reinterpret_cast<int8_t*>(pack);
    bsum_pairs_ = reinterpret_cast<int32_t*>(pack + quant_bytes);
    act_d_ = reinterpret_cast<float*>(bsum_pairs_ + supers_ * kPairs * padded_);
    for (int64_t j = 0; j < padded_; ++j) {
      const auto* y = reinterpret_cast<const BlockQ8_K*>(rows[std::min(j, n - 1)]);
      for (int64_t b = 0; b < supers_ && j < n; ++b) {
        std::memcpy(act_q_ + (j * supers_ + b) * kQK_K, y[b].qs, kQK_K);
      }
      for (int64_t b = 0; b < supers_; ++b) {
        int32_t pairs[kPairs];
        std::memcpy(pairs, y[b].bsums, sizeof(pairs));
        for (int t = 0; t < kPairs; ++t) bsum_pairs_[(b * kPairs + t) * padded_ + j] = pairs[t];
        act_d_[b * padded_ + j] = y[b].d;
      }
    }
  }

  // Packs the 4 rows, then for every activation of the panel: Q4_K's sum of mins (float,
  // [row][act]) or Q6_K's 32 * offset per super-block (int32, [row][super-block][act]).
  void PackWeights(const uint8_t* const rows[4]) {
    w_ = GemmScratch(static_cast<size_t>(4 * supers_ * kSuperBytes), 1);
    const int64_t side_words = q6_ ? 4 * supers_ * padded_ : 4 * padded_;
    side_ = GemmScratch(static_cast<size_t>(side_words * 4), 2);
    for (int i = 0; i < 4; ++i) {
      uint8_t* dst = w_ + i * supers_ * kSuperBytes;
      for (int64_t b = 0; b < supers_; ++b) {
        if (q6_) {
          PackQ6K(reinterpret_cast<const BlockQ6_K*>(rows[i])[b], dst + b * kSuperBytes);
        } else {
          PackQ4K(reinterpret_cast<const BlockQ4_K*>(rows[i])[b], dst + b * kSuperBytes);
        }
      }
      for (int64_t j = 0; j < padded_; j += 16) {
        __m512 sum_mins = _mm512_setzero_ps();
        for (int64_t b = 0; b < supers_; ++b) {
          const uint8_t* wp = dst + b * kSuperBytes;
          __m512i dot = _mm512_setzero_si512();
          for (int t = 0; t < kPairs; ++t) {
            int32_t muls;
            std::memcpy(&muls, wp + kMulsOffset + 4 * t, 4);
            dot = MulAddI16x32(dot, _mm512_set1_epi32(muls),
                               _mm512_loadu_si512(bsum_pairs_ + (b * kPairs + t) * padded_ + j));
          }
          if (q6_) {
            _mm512_storeu_si512(reinterpret_cast<int32_t*>(side_) + (i * supers_ + b) * padded_ + j,
                                _mm512_slli_epi32(dot, 5));
          } else {  // DotQ4K: sum_mins = fma(dmin * y.d, float(mins_dot), sum_mins), the
                    // same FMA (MatMulRowsAreBitIdenticalToVecDot checks it)
            float dmin;
            std::memcpy(&dmin, wp + kScalesOffset + 4, 4);
            const __m512 dd =
                _mm512_mul_ps(_mm512_set1_ps(dmin), _mm512_loadu_ps(act_d_ + b * padded_ + j));
            sum_mins = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(dot), sum_mins);
          }
        }
        if (!q6_) {
          _mm512_storeu_ps(reinterpret_cast<float*>(side_) + i * padded_ + j, sum_mins);
        }
      }
    }
  }

  void Tile(const int64_t acts[4], float out[16]) const {
    const auto* offsets = reinterpret_cast<const int32_t*>(side_);
    __m256 acc[16];
    for (__m256& v : acc) v = _mm256_setzero_ps();
    for (int64_t b = 0; b < supers_; ++b) {
      const int8_t* aq[4];
      float ad[4];
      for (int j = 0; j < 4; ++j) {
        aq[j] = act_q_ + (acts[j] * supers_ + b) * kQK_K;
        ad[j] = act_d_[b * padded_ + acts[j]];
      }
      for (int i = 0; i < 4; ++i) {
        const uint8_t* wp = w_ + (i * supers_ + b) * kSuperBytes;
        __m512i q[4];
        for (int c = 0; c < 4; ++c) q[c] = _mm512_loadu_si512(wp + 64 * c);
        float dw;
        std::memcpy(&dw, wp + kScalesOffset, 4);
        for (int j = 0; j < 4; ++j) {
          __m512i sum = _mm512_setzero_si512();
          for (int c = 0; c < 4; ++c) {
            const __m512i p = _mm512_maddubs_epi16(q[c], _mm512_load_si512(aq[j] + 64 * c));
            sum = MulAddI16x32(sum, p, _mm512_loadu_si512(wp + kSubScalesOffset + 64 * c));
          }
          __m256i lanes =
              _mm256_add_epi32(_mm512_castsi512_si256(sum), _mm512_extracti64x4_epi64(sum, 1));
          if (q6_) {
            const int32_t off = offsets[(i * supers_ + b) * padded_ + acts[j]];
            lanes = _mm256_sub_epi32(lanes, _mm256_zextsi128_si256(_mm_cvtsi32_si128(off)));
          }
          const float d = dw * ad[j];
          acc[4 * i + j] =
              _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), acc[4 * i + j]);
        }
      }
    }
    SumLanes8x16(acc, out);
    if (!q6_) {
      const auto* sum_mins = reinterpret_cast<const float*>(side_);
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) out[4 * i + j] -= sum_mins[i * padded_ + acts[j]];
      }
    }
  }

 private:
  static constexpr int64_t kSubScalesOffset = 256;
  static constexpr int64_t kMulsOffset = 512;
  static constexpr int64_t kScalesOffset = 544;
  static constexpr int64_t kSuperBytes = 576;
  static constexpr int kPairs = 8;  // int16 pairs of bsums per super-block

  static void PackQ4K(const BlockQ4_K& x, uint8_t* o) {
    const __m256i low = _mm256_set1_epi8(0x0F);
    for (int c = 0; c < 4; ++c) {
      const __m256i q = LoadI256(x.qs + 32 * c);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64 * c), _mm256_and_si256(q, low));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64 * c + 32),
                          _mm256_and_si256(_mm256_srli_epi16(q, 4), low));
    }
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) GetScaleMinK4(j, x.scales, &sc[j], &m[j]);
    for (int c = 0; c < 4; ++c) {  // elements 64c..: sub-blocks 2c (lanes 0-15), 2c + 1
      const __m512i s =
          _mm512_inserti64x4(_mm512_set1_epi16(sc[2 * c]), _mm256_set1_epi16(sc[2 * c + 1]), 1);
      _mm512_storeu_si512(o + kSubScalesOffset + 64 * c, s);
    }
    int16_t muls[16];  // sum_k muls[k] * bsums[k] = sum_j m[j] * (bsums[2j] + bsums[2j + 1])
    for (int k = 0; k < 16; ++k) muls[k] = m[k / 2];
    std::memcpy(o + kMulsOffset, muls, sizeof(muls));
    const float d = HalfToFloat(x.d), dmin = HalfToFloat(x.dmin);
    std::memcpy(o + kScalesOffset, &d, 4);
    std::memcpy(o + kScalesOffset + 4, &dmin, 4);
  }

  static void PackQ6K(const BlockQ6_K& x, uint8_t* o) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i m2 = _mm256_set1_epi8(0x30);
    for (int h = 0; h < 2; ++h) {  // as DotQ6K: 128 elements from 64 ql and 32 qh bytes
      const __m256i ql0 = LoadI256(x.ql + 64 * h);
      const __m256i ql1 = LoadI256(x.ql + 64 * h + 32);
      const __m256i qh = LoadI256(x.qh + 32 * h);
      const __m256i q[4] = {_mm256_or_si256(_mm256_and_si256(ql0, m4),
                                            _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2)),
                            _mm256_or_si256(_mm256_and_si256(ql1, m4),
                                            _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2)),
                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                                            _mm256_and_si256(qh, m2)),
                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                            _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2))};
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 128 * h + 32 * i), q[i]);
      }
    }
    // Element pair l of the 64 elements from 64c lies in sub-block 4c + l / 8.
    const __m256i s16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales)));
    for (int c = 0; c < 4; ++c) {
      alignas(64) int16_t idx[32];
      for (int l = 0; l < 32; ++l) idx[l] = static_cast<int16_t>(4 * c + l / 8);
      const __m512i s =
          _mm512_permutexvar_epi16(_mm512_load_si512(idx), _mm512_castsi256_si512(s16));
      _mm512_storeu_si512(o + kSubScalesOffset + 64 * c, s);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + kMulsOffset), s16);
    const float d = HalfToFloat(x.d), dmin = 0.0f;
    std::memcpy(o + kScalesOffset, &d, 4);
    std::memcpy(o + kScalesOffset + 4, &dmin, 4);
  }

  bool q6_;
  int64_t supers_;
  int64_t padded_ = 0;             // activations in the panel, rounded up to 16
  int8_t* act_q_ = nullptr;        // [activation][super-block][256]
  int32_t* bsum_pairs_ = nullptr;  // [super-block][pair][padded_]
  float* act_d_ = nullptr;         // [super-block][padded_]
  uint8_t* w_ = nullptr;           // [4][super-block] packed
  uint8_t* side_ = nullptr;        // sums of mins or offsets, see PackWeights
};

#endif  // TRIPLANE_GEMM_K_QUANT

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#endif  // TRIPLANE_ENGINE_KERNELS_CPU_GEMM_K_QUANT_INL_H_
