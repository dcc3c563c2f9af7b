#pragma once

// CPU tensor types: GGUF's block layouts (byte-exact with ggml-common.h), scalar reference
// quantizers/dequantizers, and the activation quantization that each weight type's dot
// product consumes.
//
// Supported weight types: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K. Activation types:
// Q8_0 for Q8_0/Q4_0 weights, Q8_K for Q4_K/Q6_K weights, and the weight's own type for
// F32/F16/BF16 (ggml's vec_dot_type pairing). Q8_K is an activation-only type.
//
// Thread safety: every function here is pure; call from any thread.

#include <cstdint>

#include "absl/status/status.h"
#include "engine/gguf/ggml_type.h"

namespace triplane::engine::cpu {

inline constexpr int64_t kQK8_0 = 32;  // elements per Q8_0 / Q4_0 block
inline constexpr int64_t kQK4_0 = 32;
inline constexpr int64_t kQK_K = 256;  // elements per K-quant super-block

// Q8_0: x = d * q, q in [-127, 127] (34 bytes per 32).
struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQK8_0];
};

// Q4_0: x = d * (q - 8); byte j holds element j (low nibble) and j + 16 (high nibble).
struct BlockQ4_0 {
  uint16_t d;  // fp16 scale
  uint8_t qs[kQK4_0 / 2];
};

// Q4_K: 8 sub-blocks of 32; x = d * sc[j] * q - dmin * m[j], q in [0, 15], sc/m 6-bit
// packed in `scales` (see GetScaleMinK4). qs[32c + l] holds element 64c + l (low nibble)
// and 64c + 32 + l (high nibble).
struct BlockQ4_K {
  uint16_t d;     // fp16 super-scale of the sub-block scales
  uint16_t dmin;  // fp16 super-scale of the sub-block mins
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};

// Q6_K: 16 sub-blocks of 16; x = d * scales[j] * (q - 32), q 6-bit: low 4 bits in ql,
// high 2 bits in qh (layout per 128 elements, see DequantizeRow in quant_k.cc).
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;  // fp16 super-scale
};

// Q8_K (activations only): x = d * q, float d, plus sums of each 16 quants.
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

// Unpacks the 6-bit scale `*sc` and min `*m` of Q4_K sub-block j (0..7) from `scales`:
// j < 4: low 6 bits of bytes j and j + 4; j >= 4: nibbles of byte j + 4 plus the top two
// bits of bytes j - 4 (scale) and j (min).
inline void GetScaleMinK4(int j, const uint8_t* scales, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// True for the types this file (de)quantizes: the weight types above plus Q8_K.
bool IsCpuTensorType(GgmlType type);

// True for the weight types the dot products accept (IsCpuTensorType minus Q8_K).
bool IsCpuWeightType(GgmlType type);

// The activation type that `weight_type`'s dot product multiplies with.
// REQUIRES: IsCpuWeightType(weight_type).
GgmlType ActivationType(GgmlType weight_type);

// Bytes of a row of `n` elements of `type`. REQUIRES: IsCpuTensorType(type), n a
// multiple of the block size.
int64_t RowBytes(GgmlType type, int64_t n);

// Quantizes `n` floats into `type` with ggml's reference quantizers (the ones
// llama-quantize and gguf writers use without an importance matrix), so generated files
// look like real ones. dst: RowBytes(type, n) bytes. InvalidArgument when the type is not
// a CPU tensor type or `n` is not a multiple of its block size.
[[nodiscard]] absl::Status QuantizeRow(GgmlType type, const float* src, void* dst, int64_t n);

// Expands `n` elements of `type` into floats. src: RowBytes(type, n) bytes. Same errors.
[[nodiscard]] absl::Status DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n);

// Converts the activation row `x` [n] into ActivationType(weight_type) at `dst`
// (RowBytes(ActivationType(weight_type), n) bytes), with the exact arithmetic llama.cpp's
// x86 CPU backend uses at run time: Q8_0 scale amax/127 rounded to fp16, multiplier
// 127/amax, ties to even (this differs from QuantizeRow's file quantizer); Q8_K as
// ggml's reference; F16/BF16 round to nearest even. REQUIRES: IsCpuWeightType(weight_type),
// n a multiple of the activation block size. Cost: O(n).
void QuantizeActivations(GgmlType weight_type, const float* x, int64_t n, void* dst);

}  // namespace triplane::engine::cpu
