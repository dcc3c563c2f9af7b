#pragma once

// Shared by interleaved.cc (per-target kernels) and interleaved_layout.cc (layout, the
// scalar kernel, activation summaries). Not a public API; see interleaved.h.

#include <cstdint>
#include <vector>

#include "engine/gguf/ggml_type.h"

namespace triplane::engine::cpu::internal {

// Bytes of one block of one 16-row group (see interleaved.h), and elements per block.
inline constexpr int64_t kGroupBlockQ4_0 = 288;
inline constexpr int64_t kGroupBlockQ8_0 = 544;
inline constexpr int64_t kGroupBlockQ4_K = 2304;
// Offsets inside a Q4_K group block.
inline constexpr int64_t kQ4KDmin = 32;
inline constexpr int64_t kQ4KScalePlanes = 64;
inline constexpr int64_t kQ4KQuants = 256;

// What a kernel needs of one activation block besides its quants.
// Q8_0 / Q4_0: d_a, and the integer correction added to every block sum (Q4_0:
// -8 * sum(a), undoing the unsigned nibbles; Q8_0: -128 * sum(a), undoing the +128 bias).
struct ActBlockQ8_0 {
  float d;
  int32_t correction;
};
// The weights' unsigned offset the correction undoes, per activation quant: -8 for
// Q4_0's nibbles, -128 for Q8_0's +128 bias.
inline int32_t CorrectionBias(GgmlType type) { return type == GgmlType::kQ4_0 ? -8 : -128; }
// Q4_K: d_a, and the activation sums of sub-blocks (2t, 2t + 1) as int16 pairs.
struct ActBlockQ8_K {
  float d;
  int32_t sub_sum_pairs[4];
};

// Fills `out` with one summary per block of each of the n_act activation rows (row a's
// blocks at out[a * blocks ...]), resizing it as needed; returns blocks per row.
int64_t SummarizeActsQ8_0(GgmlType type, const uint8_t* acts, int64_t n_act, int64_t stride,
                          int64_t cols, std::vector<ActBlockQ8_0>& out);
int64_t SummarizeActsQ8_K(const uint8_t* acts, int64_t n_act, int64_t stride, int64_t cols,
                          std::vector<ActBlockQ8_K>& out);

// The portable kernel: the same arithmetic as the SIMD kernels, lane by lane.
void MatMulInterleavedScalar(GgmlType type, const uint8_t* packed, int64_t cols,
                             const uint8_t* acts, int64_t n_act, int64_t stride, float* out,
                             int64_t out_stride, int64_t row_begin, int64_t row_end);

}  // namespace triplane::engine::cpu::internal
