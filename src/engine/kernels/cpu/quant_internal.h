#pragma once

// Helpers shared by the scalar quantizers (quant.cc, quant_k.cc). Not a public API.

#include <cstdint>
#include <cstring>

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

}  // namespace triplane::engine::cpu::internal
