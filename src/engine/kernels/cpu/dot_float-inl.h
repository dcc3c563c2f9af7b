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
// tail element by element with fused multiply-adds. The mat-vec runs several rows at
// once for instruction-level parallelism and the tiled mat-mat (gemm_float-inl.h) runs
// one accumulator per output: both repeat exactly these operations per output.
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

// DotWith of rows x[0..3] with y, interleaved (four independent accumulators).
template <typename T, class Load, class Scalar>
HWY_INLINE void DotWith4(const T* const x[4], const T* HWY_RESTRICT y, int64_t n, Load load,
                         Scalar scalar, float out[4]) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto yv = load(d, y, i);
    s0 = hn::MulAdd(load(d, x[0], i), yv, s0);
    s1 = hn::MulAdd(load(d, x[1], i), yv, s1);
    s2 = hn::MulAdd(load(d, x[2], i), yv, s2);
    s3 = hn::MulAdd(load(d, x[3], i), yv, s3);
  }
  out[0] = hn::GetLane(hn::SumOfLanes(d, s0));
  out[1] = hn::GetLane(hn::SumOfLanes(d, s1));
  out[2] = hn::GetLane(hn::SumOfLanes(d, s2));
  out[3] = hn::GetLane(hn::SumOfLanes(d, s3));
  for (; i < n; ++i) {
    const float yv = scalar(y, i);
    for (int r = 0; r < 4; ++r) out[r] = std::fma(scalar(x[r], i), yv, out[r]);
  }
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

template <class Row>
HWY_INLINE void DotRow4(const uint8_t* const x[4], const void* y, int64_t n, float out[4]) {
  using T = typename Row::T;
  const T* rows[4] = {reinterpret_cast<const T*>(x[0]), reinterpret_cast<const T*>(x[1]),
                      reinterpret_cast<const T*>(x[2]), reinterpret_cast<const T*>(x[3])};
  DotWith4(rows, static_cast<const T*>(y), n, [](auto d, const T* p, int64_t i) { return Row::Load(d, p, i); },
           &Row::Scalar, out);
}

HWY_INLINE float DotF32(const float* x, const float* y, int64_t n) { return DotRow<F32Row>(x, y, n); }
HWY_INLINE float DotF16(const uint16_t* x, const uint16_t* y, int64_t n) { return DotRow<F16Row>(x, y, n); }
HWY_INLINE float DotBF16(const uint16_t* x, const uint16_t* y, int64_t n) { return DotRow<BF16Row>(x, y, n); }

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#endif  // TRIPLANE_ENGINE_KERNELS_CPU_DOT_FLOAT_INL_H_
