// Dot products of F32 x F32, F16 x F16 and BF16 x BF16 rows, per Highway target.
// Float accumulation in one vector sum per output (the reference uses double).

#if defined(TRIPLANE_ENGINE_KERNELS_CPU_DOT_FLOAT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TRIPLANE_ENGINE_KERNELS_CPU_DOT_FLOAT_INL_H_
#undef TRIPLANE_ENGINE_KERNELS_CPU_DOT_FLOAT_INL_H_
#else
#define TRIPLANE_ENGINE_KERNELS_CPU_DOT_FLOAT_INL_H_
#endif

#include <cmath>
#include <cstdint>

#include "engine/kernels/cpu/fp16.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace triplane::engine::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// sum_i Load(x, i) * Load(y, i) for i < n; `load(d, p, i)` gives the float vector of
// elements [i, i + Lanes) and `scalar(p, i)` one element, for the tail. One vector
// accumulator (fused multiply-adds in element order), reduced by SumOfLanes, then the
// tail element by element with fused multiply-adds. One chain of fused multiply-adds
// still outruns memory on a mat-vec (16 elements per FMA latency), and rows are read
// strictly in order, which prefetchers follow best; the tiled mat-mat
// (gemm_float-inl.h) runs one accumulator per output: the same operations per output.
template <typename T, class Load, class Scalar>
HWY_INLINE float DotWith(const T* HWY_RESTRICT x, const T* HWY_RESTRICT y, int64_t n, Load load,
                         Scalar scalar) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto sum = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) sum = hn::MulAdd(load(d, x, i), load(d, y, i), sum);
  float out = hn::GetLane(hn::SumOfLanes(d, sum));
  for (; i < n; ++i) out = std::fma(scalar(x, i), scalar(y, i), out);
  return out;
}

// Element loaders per row type: a float vector at element i, and one element.
struct F32Row {
  using T = float;
  template <class D>
  static hn::Vec<D> Load(D d, const float* p, int64_t i) { return hn::LoadU(d, p + i); }
  static float Scalar(const float* p, int64_t i) { return p[i]; }
};
struct F16Row {
  using T = uint16_t;
  template <class D>
  static hn::Vec<D> Load(D d, const uint16_t* p, int64_t i) {
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p + i)));
  }
  static float Scalar(const uint16_t* p, int64_t i) { return Fp16ToFp32(p[i]); }
};
struct BF16Row {
  using T = uint16_t;
  template <class D>
  static hn::Vec<D> Load(D d, const uint16_t* p, int64_t i) {
    const hn::Rebind<hwy::bfloat16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::bfloat16_t*>(p + i)));
  }
  static float Scalar(const uint16_t* p, int64_t i) { return Bf16ToFp32(p[i]); }
};

template <class Row>
HWY_INLINE float DotRow(const void* x, const void* y, int64_t n) {
  using T = typename Row::T;
  return DotWith(
      static_cast<const T*>(x), static_cast<const T*>(y), n,
      [](auto d, const T* p, int64_t i) { return Row::Load(d, p, i); }, &Row::Scalar);
}


}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#endif  // TRIPLANE_ENGINE_KERNELS_CPU_DOT_FLOAT_INL_H_
