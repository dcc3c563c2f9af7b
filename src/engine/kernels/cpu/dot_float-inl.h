// Dot products of F32 x F32, F16 x F16 and BF16 x BF16 rows, per Highway target.
// Float accumulation in four independent vector sums (the reference uses double).

#if defined(TRIPLANE_ENGINE_KERNELS_CPU_DOT_FLOAT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TRIPLANE_ENGINE_KERNELS_CPU_DOT_FLOAT_INL_H_
#undef TRIPLANE_ENGINE_KERNELS_CPU_DOT_FLOAT_INL_H_
#else
#define TRIPLANE_ENGINE_KERNELS_CPU_DOT_FLOAT_INL_H_
#endif

#include <cstdint>

#include "engine/kernels/cpu/fp16.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace triplane::engine::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// sum_i Load(x, i) * Load(y, i) for i < n; `load(d, p, i)` gives the float vector of
// elements [i, i + Lanes) and `scalar(p, i)` one element, for the tail.
template <typename T, class Load, class Scalar>
HWY_INLINE float DotWith(const T* HWY_RESTRICT x, const T* HWY_RESTRICT y, int64_t n, Load load,
                         Scalar scalar) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto sum0 = hn::Zero(d), sum1 = hn::Zero(d), sum2 = hn::Zero(d), sum3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    sum0 = hn::MulAdd(load(d, x, i), load(d, y, i), sum0);
    sum1 = hn::MulAdd(load(d, x, i + N), load(d, y, i + N), sum1);
    sum2 = hn::MulAdd(load(d, x, i + 2 * N), load(d, y, i + 2 * N), sum2);
    sum3 = hn::MulAdd(load(d, x, i + 3 * N), load(d, y, i + 3 * N), sum3);
  }
  for (; i + N <= n; i += N) sum0 = hn::MulAdd(load(d, x, i), load(d, y, i), sum0);
  sum0 = hn::Add(hn::Add(sum0, sum1), hn::Add(sum2, sum3));
  float sum = hn::GetLane(hn::SumOfLanes(d, sum0));
  for (; i < n; ++i) sum += scalar(x, i) * scalar(y, i);
  return sum;
}

HWY_INLINE float DotF32(const float* x, const float* y, int64_t n) {
  return DotWith(
      x, y, n, [](auto d, const float* p, int64_t i) { return hn::LoadU(d, p + i); },
      [](const float* p, int64_t i) { return p[i]; });
}

HWY_INLINE float DotF16(const uint16_t* x, const uint16_t* y, int64_t n) {
  return DotWith(
      x, y, n,
      [](auto d, const uint16_t* p, int64_t i) {
        const hn::Rebind<hwy::float16_t, decltype(d)> dh;
        return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p + i)));
      },
      [](const uint16_t* p, int64_t i) { return Fp16ToFp32(p[i]); });
}

HWY_INLINE float DotBF16(const uint16_t* x, const uint16_t* y, int64_t n) {
  return DotWith(
      x, y, n,
      [](auto d, const uint16_t* p, int64_t i) {
        const hn::Rebind<hwy::bfloat16_t, decltype(d)> dh;
        return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::bfloat16_t*>(p + i)));
      },
      [](const uint16_t* p, int64_t i) { return Bf16ToFp32(p[i]); });
}

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#endif  // TRIPLANE_ENGINE_KERNELS_CPU_DOT_FLOAT_INL_H_
