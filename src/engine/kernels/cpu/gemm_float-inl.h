// Register-tiled mat-mat kernel for F32, F16 and BF16 weights (activations in the same
// type), per Highway target, for gemm_tile-inl.h's driver. Rows are converted (exactly)
// to aligned f32 once per panel; a 4 x 4 tile multiplies each weight vector with four
// activation vectors. Bit-identical to DotWith in dot_float-inl.h: its four partial sums
// (vector j of every four in sum j, leftover whole vectors in sum 0) are computed in four
// passes over the row, combined as (s0 + s1) + (s2 + s3), reduced as SumOfLanes does, then
// the scalar tail is added element by element.

#if defined(TRIPLANE_ENGINE_KERNELS_CPU_GEMM_FLOAT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TRIPLANE_ENGINE_KERNELS_CPU_GEMM_FLOAT_INL_H_
#undef TRIPLANE_ENGINE_KERNELS_CPU_GEMM_FLOAT_INL_H_
#else
#define TRIPLANE_ENGINE_KERNELS_CPU_GEMM_FLOAT_INL_H_
#endif

#include <cstdint>
#include <cstring>

#include "engine/gguf/ggml_type.h"
#include "engine/kernels/cpu/fp16.h"
#include "engine/kernels/cpu/gemm_tile-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace triplane::engine::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

class GemmFloat {
 public:
  // REQUIRES: type is F32, F16 or BF16.
  GemmFloat(GgmlType type, int64_t cols)
      : type_(type), cols_(cols), stride_((cols * 4 + 63) / 64 * 64) {}

  int64_t ActCacheBytes() const { return cols_ * 4; }

  void PackActs(const uint8_t* const rows[], int64_t n) {
    uint8_t* pack = GemmScratch(static_cast<size_t>(n * stride_), 0);
    for (int64_t j = 0; j < n; ++j) act_[j] = Convert(rows[j], pack + j * stride_);
  }

  void PackWeights(const uint8_t* const rows[4]) {
    uint8_t* pack = GemmScratch(static_cast<size_t>(4 * stride_), 1);
    for (int i = 0; i < 4; ++i) w_[i] = Convert(rows[i], pack + i * stride_);
  }

  void Tile(const int64_t acts[4], float out[16]) const {
    const float* HWY_RESTRICT a[4];
    for (int j = 0; j < 4; ++j) a[j] = act_[acts[j]];
    const int64_t n = static_cast<int64_t>(hn::Lanes(d_));
    const int64_t quad_vectors = cols_ / (4 * n) * 4;  // vectors of DotWith's 4-way loop
    const int64_t vectors = cols_ / n;
    using V = hn::Vec<decltype(d_)>;
    // partial[q][t]: DotWith's sum q for pair t = 4i + j.
    HWY_ALIGN float partial[4][16][hn::MaxLanes(decltype(d_)())];
    for (int64_t q = 0; q < 4; ++q) {
      V acc[16];
      for (V& v : acc) v = hn::Zero(d_);
      auto step = [&](int64_t k) {
        const V a0 = hn::LoadU(d_, a[0] + k), a1 = hn::LoadU(d_, a[1] + k);
        const V a2 = hn::LoadU(d_, a[2] + k), a3 = hn::LoadU(d_, a[3] + k);
        for (int i = 0; i < 4; ++i) {
          const V wv = hn::LoadU(d_, w_[i] + k);
          acc[4 * i + 0] = hn::MulAdd(wv, a0, acc[4 * i + 0]);
          acc[4 * i + 1] = hn::MulAdd(wv, a1, acc[4 * i + 1]);
          acc[4 * i + 2] = hn::MulAdd(wv, a2, acc[4 * i + 2]);
          acc[4 * i + 3] = hn::MulAdd(wv, a3, acc[4 * i + 3]);
        }
      };
      for (int64_t v = q; v < quad_vectors; v += 4) step(v * n);
      if (q == 0) {
        for (int64_t v = quad_vectors; v < vectors; ++v) step(v * n);
      }
      for (int t = 0; t < 16; ++t) hn::Store(acc[t], d_, partial[q][t]);
    }
    V sums[16];
    for (int t = 0; t < 16; ++t) {
      sums[t] = hn::Add(hn::Add(hn::Load(d_, partial[0][t]), hn::Load(d_, partial[1][t])),
                        hn::Add(hn::Load(d_, partial[2][t]), hn::Load(d_, partial[3][t])));
    }
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    __m512 raw[16];
    for (int t = 0; t < 16; ++t) raw[t] = sums[t].raw;
    SumLanes16x16(raw, out);
#else
    for (int t = 0; t < 16; ++t) out[t] = hn::GetLane(hn::SumOfLanes(d_, sums[t]));
#endif
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) {
        float sum = out[4 * i + j];
        for (int64_t k = vectors * n; k < cols_; ++k) sum += w_[i][k] * a[j][k];
        out[4 * i + j] = sum;
      }
    }
  }

 private:
  // The row as f32 in `dst` (64-byte aligned: vectors never straddle cache lines).
  const float* Convert(const uint8_t* src, uint8_t* dst) const {
    float* HWY_RESTRICT out = reinterpret_cast<float*>(dst);
    const int64_t n = static_cast<int64_t>(hn::Lanes(d_));
    int64_t i = 0;
    switch (type_) {
      case GgmlType::kF32:
        std::memcpy(out, src, static_cast<size_t>(cols_) * 4);
        break;
      case GgmlType::kF16: {
        const hn::Rebind<hwy::float16_t, decltype(d_)> dh;
        const auto* p = reinterpret_cast<const hwy::float16_t*>(src);
        for (; i + n <= cols_; i += n) {
          hn::StoreU(hn::PromoteTo(d_, hn::LoadU(dh, p + i)), d_, out + i);
        }
        const auto* u = reinterpret_cast<const uint16_t*>(src);
        for (; i < cols_; ++i) out[i] = Fp16ToFp32(u[i]);
        break;
      }
      case GgmlType::kBF16: {
        const hn::Rebind<hwy::bfloat16_t, decltype(d_)> dh;
        const auto* p = reinterpret_cast<const hwy::bfloat16_t*>(src);
        for (; i + n <= cols_; i += n) {
          hn::StoreU(hn::PromoteTo(d_, hn::LoadU(dh, p + i)), d_, out + i);
        }
        const auto* u = reinterpret_cast<const uint16_t*>(src);
        for (; i < cols_; ++i) out[i] = Bf16ToFp32(u[i]);
        break;
      }
      default:
        break;
    }
    return out;
  }

  hn::ScalableTag<float> d_;
  GgmlType type_;
  int64_t cols_;
  int64_t stride_;  // bytes per packed row
  const float* act_[kMaxPanel] = {};
  const float* w_[4] = {};
};

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#endif  // TRIPLANE_ENGINE_KERNELS_CPU_GEMM_FLOAT_INL_H_
