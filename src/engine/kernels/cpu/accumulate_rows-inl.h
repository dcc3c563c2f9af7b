// Weighted sums of attention value rows, per Highway target, for any storage of the rows
// (f16 in matmul.cc, int8 with scales in kv_q8.cc):
//   acc[t * acc_stride + d] = fma(w(t, j), row j [d], ...) for j = 0 .. len[t] - 1 in order.
// For 4 tokens at a time each row vector is widened once and added into the tokens that
// reach it; for a single token (decode) four vectors of the row run side by side instead.
// Per output lane it is the same fma sequence either way, so a token's result does not
// depend on what else is in the batch.

#if defined(TRIPLANE_ENGINE_KERNELS_CPU_ACCUMULATE_ROWS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TRIPLANE_ENGINE_KERNELS_CPU_ACCUMULATE_ROWS_INL_H_
#undef TRIPLANE_ENGINE_KERNELS_CPU_ACCUMULATE_ROWS_INL_H_
#else
#define TRIPLANE_ENGINE_KERNELS_CPU_ACCUMULATE_ROWS_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace triplane::engine::cpu {
namespace HWY_NAMESPACE {

// load(j, c): lanes [c, c + Lanes(d)) of row j as floats; element(j, c): one lane of it
// (past the last whole vector); weight(t, j): token t's weight of row j;
// prefetch(j): called for rows ahead of the one-token loop (may do nothing).
template <class D, class Load, class Element, class Weight, class Prefetch>
HWY_INLINE void AccumulateRows(D d, const int64_t* len, int64_t n_tokens, int64_t dim, float* HWY_RESTRICT acc,
                               int64_t acc_stride, Load load, Element element, Weight weight, Prefetch prefetch) {
  namespace hn = hwy::HWY_NAMESPACE;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t c = 0;
  if (n_tokens == 1) {
    for (; c + 4 * N <= dim; c += 4 * N) {
      auto a0 = hn::LoadU(d, acc + c), a1 = hn::LoadU(d, acc + c + N);
      auto a2 = hn::LoadU(d, acc + c + 2 * N), a3 = hn::LoadU(d, acc + c + 3 * N);
      for (int64_t j = 0; j < len[0]; ++j) {
        prefetch(j, c);
        const auto w = hn::Set(d, weight(0, j));
        a0 = hn::MulAdd(w, load(j, c), a0);
        a1 = hn::MulAdd(w, load(j, c + N), a1);
        a2 = hn::MulAdd(w, load(j, c + 2 * N), a2);
        a3 = hn::MulAdd(w, load(j, c + 3 * N), a3);
      }
      hn::StoreU(a0, d, acc + c);
      hn::StoreU(a1, d, acc + c + N);
      hn::StoreU(a2, d, acc + c + 2 * N);
      hn::StoreU(a3, d, acc + c + 3 * N);
    }
  }
  for (; c + N <= dim; c += N) {
    for (int64_t t0 = 0; t0 < n_tokens; t0 += 4) {
      const int64_t nt = std::min<int64_t>(4, n_tokens - t0);
      auto a0 = hn::LoadU(d, acc + (t0 + 0) * acc_stride + c);
      auto a1 = nt > 1 ? hn::LoadU(d, acc + (t0 + 1) * acc_stride + c) : a0;
      auto a2 = nt > 2 ? hn::LoadU(d, acc + (t0 + 2) * acc_stride + c) : a0;
      auto a3 = nt > 3 ? hn::LoadU(d, acc + (t0 + 3) * acc_stride + c) : a0;
      int64_t most = 0;
      for (int64_t t = t0; t < t0 + nt; ++t) most = std::max(most, len[t]);
      for (int64_t j = 0; j < most; ++j) {
        const auto v = load(j, c);
        if (j < len[t0]) a0 = hn::MulAdd(hn::Set(d, weight(t0, j)), v, a0);
        if (nt > 1 && j < len[t0 + 1]) a1 = hn::MulAdd(hn::Set(d, weight(t0 + 1, j)), v, a1);
        if (nt > 2 && j < len[t0 + 2]) a2 = hn::MulAdd(hn::Set(d, weight(t0 + 2, j)), v, a2);
        if (nt > 3 && j < len[t0 + 3]) a3 = hn::MulAdd(hn::Set(d, weight(t0 + 3, j)), v, a3);
      }
      hn::StoreU(a0, d, acc + (t0 + 0) * acc_stride + c);
      if (nt > 1) hn::StoreU(a1, d, acc + (t0 + 1) * acc_stride + c);
      if (nt > 2) hn::StoreU(a2, d, acc + (t0 + 2) * acc_stride + c);
      if (nt > 3) hn::StoreU(a3, d, acc + (t0 + 3) * acc_stride + c);
    }
  }
  for (; c < dim; ++c) {  // lanes past the last whole vector: the same fma per element
    for (int64_t t = 0; t < n_tokens; ++t) {
      float a = acc[t * acc_stride + c];
      for (int64_t j = 0; j < len[t]; ++j) a = std::fma(weight(t, j), element(j, c), a);
      acc[t * acc_stride + c] = a;
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#endif  // TRIPLANE_ENGINE_KERNELS_CPU_ACCUMULATE_ROWS_INL_H_
