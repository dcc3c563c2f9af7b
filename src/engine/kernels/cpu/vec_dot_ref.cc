// Scalar reference dot products: ggml's generic C kernels, operation by operation
// (integer sums inside blocks, then float scaling; float types accumulate in double).

#include <cstring>

#include "engine/kernels/cpu/fp16.h"
#include "engine/kernels/cpu/matmul.h"

namespace triplane::engine::cpu {
namespace {

template <typename Convert, typename T>
float DotFloat(const T* x, const T* y, int64_t n, Convert convert) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(convert(x[i]) * convert(y[i]));
  return static_cast<float>(sum);
}

float DotQ8_0(const BlockQ8_0* x, const BlockQ8_0* y, int64_t n) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += x[b].qs[j] * y[b].qs[j];
    sum += sumi * (Fp16ToFp32(x[b].d) * Fp16ToFp32(y[b].d));
  }
  return sum;
}

float DotQ4_0(const BlockQ4_0* x, const BlockQ8_0* y, int64_t n) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    int sumi = 0;
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      sumi += ((x[b].qs[j] & 0x0F) - 8) * y[b].qs[j];
      sumi += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + 16];
    }
    sum += sumi * Fp16ToFp32(x[b].d) * Fp16ToFp32(y[b].d);
  }
  return sum;
}

// sum_j d*sc[j] * <q_j, a_j> - dmin*m[j] * sum(a_j) over the 8 sub-blocks of 32; the
// activation sums come from Q8_K's bsums.
float DotQ4K(const BlockQ4_K* x, const BlockQ8_K* y, int64_t n) {
  float sums[8] = {};
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    int32_t aux32[8] = {};
    int sum_mins = 0;
    for (int j = 0; j < kQK_K / 32; ++j) {
      uint8_t sc, m;
      GetScaleMinK4(j, x[b].scales, &sc, &m);
      sum_mins += (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]) * m;
      const uint8_t* q = x[b].qs + 32 * (j / 2);
      const int shift = (j % 2) * 4;
      for (int l = 0; l < 32; ++l) {
        aux32[l % 8] += sc * (((q[l] >> shift) & 0xF) * y[b].qs[32 * j + l]);
      }
    }
    const float d = Fp16ToFp32(x[b].d) * y[b].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * aux32[l];
    const float dmin = Fp16ToFp32(x[b].dmin) * y[b].d;
    sum -= dmin * sum_mins;
  }
  for (float s : sums) sum += s;
  return sum;
}

// sum_j d*scales[j] * <q_j - 32, a_j> over the 16 sub-blocks of 16.
float DotQ6K(const BlockQ6_K* x, const BlockQ8_K* y, int64_t n) {
  float sums[8] = {};
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    int8_t q[kQK_K];
    const uint8_t* ql = x[b].ql;
    const uint8_t* qh = x[b].qh;
    for (int h = 0; h < kQK_K; h += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        q[h + l + 0] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        q[h + l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        q[h + l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        q[h + l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int32_t aux32[8] = {};
    for (int j = 0; j < kQK_K / 16; ++j) {
      const int scale = x[b].scales[j];
      for (int l = 0; l < 16; ++l) aux32[l % 8] += scale * (q[16 * j + l] * y[b].qs[16 * j + l]);
    }
    const float d = Fp16ToFp32(x[b].d) * y[b].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * aux32[l];
  }
  for (float s : sums) sum += s;
  return sum;
}

}  // namespace

float VecDotRef(GgmlType weight_type, const void* w_row, const void* activation_row, int64_t n) {
  switch (weight_type) {
    case GgmlType::kF32:
      return DotFloat(static_cast<const float*>(w_row), static_cast<const float*>(activation_row),
                      n, [](float v) { return v; });
    case GgmlType::kF16:
      return DotFloat(static_cast<const uint16_t*>(w_row),
                      static_cast<const uint16_t*>(activation_row), n, Fp16ToFp32);
    case GgmlType::kBF16:
      return DotFloat(static_cast<const uint16_t*>(w_row),
                      static_cast<const uint16_t*>(activation_row), n, Bf16ToFp32);
    case GgmlType::kQ8_0:
      return DotQ8_0(static_cast<const BlockQ8_0*>(w_row),
                     static_cast<const BlockQ8_0*>(activation_row), n);
    case GgmlType::kQ4_0:
      return DotQ4_0(static_cast<const BlockQ4_0*>(w_row),
                     static_cast<const BlockQ8_0*>(activation_row), n);
    case GgmlType::kQ4_K:
      return DotQ4K(static_cast<const BlockQ4_K*>(w_row),
                    static_cast<const BlockQ8_K*>(activation_row), n);
    case GgmlType::kQ6_K:
      return DotQ6K(static_cast<const BlockQ6_K*>(w_row),
                    static_cast<const BlockQ8_K*>(activation_row), n);
    default:
      return 0.0f;
  }
}

}  // namespace triplane::engine::cpu
