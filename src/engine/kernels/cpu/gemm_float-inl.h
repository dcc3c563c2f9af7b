// Register-tiled mat-mat kernel for F32, F16 and BF16 weights (activations in the same
// type), per Highway target, for gemm_tile-inl.h's driver. Rows are converted (exactly)
// to aligned f32 once per panel; a 4 x 4 tile multiplies each weight vector with four
// activation vectors. Bit-identical to DotWith in dot_float-inl.h: one accumulator per
// output over the whole vectors in order, reduced as SumOfLanes does, then the tail
// element by element with fused multiply-adds.

#if defined(TRIPLANE_ENGINE_KERNELS_CPU_GEMM_FLOAT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TRIPLANE_ENGINE_KERNELS_CPU_GEMM_FLOAT_INL_H_
#undef TRIPLANE_ENGINE_KERNELS_CPU_GEMM_FLOAT_INL_H_
#else
#define TRIPLANE_ENGINE_KERNELS_CPU_GEMM_FLOAT_INL_H_
#endif

#include <cmath>
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
    const int64_t vectors = cols_ / n;
    using V = hn::Vec<decltype(d_)>;
    V acc[16];  // acc[4i + j]: DotWith's accumulator for weight row i, activation j
    for (V& v : acc) v = hn::Zero(d_);
    for (int64_t v = 0; v < vectors; ++v) {
      const int64_t k = v * n;
      const V a0 = hn::Load(d_, a[0] + k), a1 = hn::Load(d_, a[1] + k);
      const V a2 = hn::Load(d_, a[2] + k), a3 = hn::Load(d_, a[3] + k);
      for (int i = 0; i < 4; ++i) {
        const V wv = hn::Load(d_, w_[i] + k);
        acc[4 * i + 0] = hn::MulAdd(wv, a0, acc[4 * i + 0]);
        acc[4 * i + 1] = hn::MulAdd(wv, a1, acc[4 * i + 1]);
        acc[4 * i + 2] = hn::MulAdd(wv, a2, acc[4 * i + 2]);
        acc[4 * i + 3] = hn::MulAdd(wv, a3, acc[4 * i + 3]);
      }
    }
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    __m512 raw[16];
    for (int t = 0; t < 16; ++t) raw[t] = acc[t].raw;
    SumLanes16x16(raw, out);
#else
    for (int t = 0; t < 16; ++t) out[t] = hn::GetLane(hn::SumOfLanes(d_, acc[t]));
#endif
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) {
        float sum = out[4 * i + j];
        for (int64_t k = vectors * n; k < cols_; ++k) sum = std::fma(w_[i][k], a[j][k], sum);
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
