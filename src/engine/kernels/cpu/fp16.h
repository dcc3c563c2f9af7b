#pragma once

// IEEE half (binary16) and bfloat16 <-> float conversions, bit-exact with ggml:
// float -> half and float -> bf16 round to nearest, ties to even; NaNs stay (quiet) NaNs.
// Scalar and branch-light: for per-block scales and reference code, not for bulk data
// (the SIMD kernels convert whole vectors with Highway).

#include <bit>
#include <cstdint>

namespace triplane::engine::cpu {

// Exact: every half is representable as a float. NaNs come out quiet, as from F16C.
inline float Fp16ToFp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) {
    const uint32_t quiet = mant != 0 ? 0x00400000u : 0u;
    return std::bit_cast<float>(sign | 0x7f800000u | quiet | (mant << 13));
  }
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
  // Zero or subnormal: mant * 2^-24, exact in float.
  const float magnitude = static_cast<float>(mant) * 0x1p-24f;
  return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(magnitude));
}

// Round to nearest even; overflow gives +-inf, NaN gives a quiet NaN (0x7e00 | sign).
inline uint16_t Fp32ToFp16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x47800000u) {  // |f| >= 65536, inf or NaN: no rounding can bring it back
    return sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u);
  }
  if (x < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    // Adding 0.5 aligns the half's subnormal ulp (2^-24) with float's ulp at 0.5, so the
    // FPU's own round-to-nearest-even does the rounding.
    const float v = std::bit_cast<float>(x) + 0.5f;
    return sign | static_cast<uint16_t>(std::bit_cast<uint32_t>(v) - 0x3f000000u);
  }
  const uint32_t odd = (x >> 13) & 1u;
  x += 0xc8000fffu + odd;  // rebias exponent (127 -> 15) and round half to even
  return sign | static_cast<uint16_t>(x >> 13);
}

inline float Bf16ToFp32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

// Round to nearest even; NaN keeps its top bits and is forced quiet, like ggml.
inline uint16_t Fp32ToBf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 64u);
  return static_cast<uint16_t>((x + (0x7fffu + ((x >> 16) & 1u))) >> 16);
}

}  // namespace triplane::engine::cpu
