#pragma once

// Helpers shared by the scalar quantizers (quant.cc, quant_k.cc). Not a public API.

#include <cstdint>
#include <cstring>

#include "engine/gguf/ggml_type.h"
#include "engine/kernels/cpu/quant.h"

namespace triplane::engine::cpu::internal {

// Round to nearest, ties to even, for |f| <= 2^22 - 1 (ggml's nearest_int): adding
// 1.5 * 2^23 leaves the rounded integer in the low mantissa bits.
inline int NearestInt(float f) {
  const float biased = f + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &biased, sizeof(bits));
  return (bits & 0x007fffff) - 0x00400000;
}

// Reference quantizers/dequantizers of the K-quants (quant_k.cc). n: multiple of 256.
void QuantizeRowQ4K(const float* x, void* dst, int64_t n);
void QuantizeRowQ6K(const float* x, void* dst, int64_t n);
void DequantizeRowQ4K(const void* src, float* y, int64_t n);
void DequantizeRowQ6K(const void* src, float* y, int64_t n);

// Activation quantizers (quant.cc), scalar: Q8_K as ggml's reference, Q8_0 as llama.cpp's
// x86 run-time path. The SIMD versions (QuantizeActivationsFast) give the same bytes.
void QuantizeQ8_K(const float* x, BlockQ8_K* y, int64_t n);
void QuantizeActivationsQ8_0(const float* x, BlockQ8_0* y, int64_t n);
// QuantizeActivations for Q8_0/Q4_0 and Q4_K/Q6_K weights with the best kernel for this
// CPU (matmul.cc).
void QuantizeActivationsFast(GgmlType weight_type, const float* x, int64_t n, void* dst);

}  // namespace triplane::engine::cpu::internal
