// Per-target mat-vec / mat-mat over weight rows, and their run-time dispatch.

// Highway 1.0.3 builds AVX3_DL (AVX-512 VNNI/VBMI...) only on request.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif

#include "engine/kernels/cpu/matmul.h"

// foreach_target.h must come before the per-target headers.
// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/cpu/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "engine/kernels/cpu/dot_float-inl.h"
#include "engine/kernels/cpu/dot_q4_k-inl.h"
#include "engine/kernels/cpu/dot_q6_k-inl.h"
#include "engine/kernels/cpu/dot_q8_0-inl.h"
#include "engine/kernels/cpu/gemm_float-inl.h"
#include "engine/kernels/cpu/gemm_k_quant-inl.h"
#include "engine/kernels/cpu/gemm_q8_0-inl.h"
#include "engine/kernels/cpu/gemm_tile-inl.h"
#include "hwy/highway.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")
#endif
namespace triplane::engine::cpu {
namespace HWY_NAMESPACE {

// For each weight row in [row_begin, row_end), dots it with every activation row while
// it is hot in L1, so weights stream from memory once per call.
template <class Dot>
HWY_INLINE void Rows(const uint8_t* HWY_RESTRICT w, int64_t row_bytes,
                     const uint8_t* HWY_RESTRICT act, int64_t n_act, int64_t act_stride,
                     float* HWY_RESTRICT out, int64_t out_stride, int64_t row_begin,
                     int64_t row_end, Dot dot) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* row = w + r * row_bytes;
    for (int64_t a = 0; a < n_act; ++a) out[a * out_stride + r] = dot(row, act + a * act_stride);
  }
}

// Fewest activation rows for the tiled kernels. Their results are VecDot's exactly, so
// the choice is only speed: on Zen 4, at 2 rows packing the weights costs more than the
// tiles save; at 4 they are 1.5-2x faster than Rows, at 128 about 3x.
constexpr int64_t kMinTiledActs = 3;

// The register-tiled kernels (gemm_*-inl.h) where this target has one; returns false
// where it has none.
bool TiledT(GgmlType type, const uint8_t* w, int64_t rb, int64_t cols, const uint8_t* act,
            int64_t n_act, int64_t act_stride, float* out, int64_t out_stride, int64_t row_begin,
            int64_t row_end) {
  auto run = [&](auto&& kernel) {
    GemmTiled(kernel, w, rb, act, n_act, act_stride, out, out_stride, row_begin, row_end);
    return true;
  };
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
      return run(GemmFloat(type, cols));
#if TRIPLANE_GEMM_Q8_0
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
      return run(GemmQ8_0(type, cols));
#endif
#if TRIPLANE_GEMM_K_QUANT
    case GgmlType::kQ4_K:
    case GgmlType::kQ6_K:
      return run(GemmKQuant(type, cols));
#endif
    default:
      return false;
  }
}

void MatMulT(GgmlType type, const void* weights, int64_t rb, int64_t cols,
             const void* activations, int64_t n_act, int64_t act_stride, float* out,
             int64_t out_stride, int64_t row_begin, int64_t row_end) {
  const auto* w = static_cast<const uint8_t*>(weights);
  const auto* act = static_cast<const uint8_t*>(activations);
  if (n_act >= kMinTiledActs &&
      TiledT(type, w, rb, cols, act, n_act, act_stride, out, out_stride, row_begin, row_end)) {
    return;
  }
  auto run = [&](auto dot) {
    Rows(w, rb, act, n_act, act_stride, out, out_stride, row_begin, row_end, dot);
  };
  switch (type) {
    case GgmlType::kF32:
      run([cols](const uint8_t* x, const uint8_t* y) {
        return DotF32(reinterpret_cast<const float*>(x), reinterpret_cast<const float*>(y), cols);
      });
      break;
    case GgmlType::kF16:
      run([cols](const uint8_t* x, const uint8_t* y) {
        return DotF16(reinterpret_cast<const uint16_t*>(x), reinterpret_cast<const uint16_t*>(y),
                      cols);
      });
      break;
    case GgmlType::kBF16:
      run([cols](const uint8_t* x, const uint8_t* y) {
        return DotBF16(reinterpret_cast<const uint16_t*>(x), reinterpret_cast<const uint16_t*>(y),
                       cols);
      });
      break;
    case GgmlType::kQ8_0:
      run([cols](const uint8_t* x, const uint8_t* y) { return DotQ8_0(x, y, cols); });
      break;
    case GgmlType::kQ4_0:
      run([cols](const uint8_t* x, const uint8_t* y) { return DotQ4_0(x, y, cols); });
      break;
    case GgmlType::kQ4_K:
      run([cols](const uint8_t* x, const uint8_t* y) { return DotQ4K(x, y, cols); });
      break;
    case GgmlType::kQ6_K:
      run([cols](const uint8_t* x, const uint8_t* y) { return DotQ6K(x, y, cols); });
      break;
    default:
      break;
  }
}

float VecDotT(GgmlType type, const void* w, const void* a, int64_t n) {
  float out = 0.0f;
  MatMulT(type, w, RowBytes(type, n), n, a, 1, 0, &out, 1, 0, 1);
  return out;
}

void ToF16T(const float* HWY_RESTRICT x, int64_t n, uint16_t* HWY_RESTRICT out) {
  int64_t i = 0;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  }
#elif HWY_TARGET == HWY_AVX2
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  }
#endif
  for (; i < n; ++i) out[i] = Fp32ToFp16(x[i]);
}

int64_t TargetT() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace triplane::engine::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace triplane::engine::cpu {

HWY_EXPORT(MatMulT);
HWY_EXPORT(VecDotT);
HWY_EXPORT(TargetT);
HWY_EXPORT(ToF16T);

void ConvertToF16(const float* x, int64_t n, uint16_t* out) {
  HWY_DYNAMIC_DISPATCH(ToF16T)(x, n, out);
}

float VecDot(GgmlType weight_type, const void* w_row, const void* activation_row, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(VecDotT)(weight_type, w_row, activation_row, n);
}

void MatVec(GgmlType type, const void* weights, int64_t rows, int64_t cols, const void* activation,
            float* out, int64_t row_begin, int64_t row_end) {
  HWY_DYNAMIC_DISPATCH(MatMulT)
  (type, weights, RowBytes(type, cols), cols, activation, 1, 0, out, rows, row_begin, row_end);
}

void MatMul(GgmlType type, const void* weights, int64_t /*rows*/, int64_t cols,
            const void* activations, int64_t n_act, int64_t act_stride_bytes, float* out,
            int64_t out_stride, int64_t row_begin, int64_t row_end) {
  HWY_DYNAMIC_DISPATCH(MatMulT)
  (type, weights, RowBytes(type, cols), cols, activations, n_act, act_stride_bytes, out,
   out_stride, row_begin, row_end);
}

void MatMulStrided(GgmlType type, const void* weights, int64_t w_stride_bytes, int64_t cols,
                   const void* activations, int64_t n_act, int64_t act_stride_bytes, float* out,
                   int64_t out_stride, int64_t row_begin, int64_t row_end) {
  HWY_DYNAMIC_DISPATCH(MatMulT)
  (type, weights, w_stride_bytes, cols, activations, n_act, act_stride_bytes, out, out_stride,
   row_begin, row_end);
}

std::vector<int64_t> KernelTargets() { return hwy::SupportedAndGeneratedTargets(); }

std::string ActiveKernelTarget() { return hwy::TargetName(HWY_DYNAMIC_DISPATCH(TargetT)()); }

}  // namespace triplane::engine::cpu
#endif  // HWY_ONCE
