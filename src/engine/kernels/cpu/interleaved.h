#pragma once

// Weight matrices repacked at load time into groups of 16 interleaved rows, and the
// mat-vec / mat-mat kernels that read them (Q8_0, Q4_0 and Q4_K).
//
// In GGUF's layout each row is a run of blocks, so a kernel that reads one row at a
// time must reduce every row on its own and can feed its int8 dot-product unit with one
// row's quants only. Interleaved, each block of 16 consecutive rows is stored together
// with the 4-byte quant groups of the 16 rows side by side: one 512-bit vector holds the
// same 4 elements of 16 rows, so one AVX-512 VNNI vpdpbusd against 4 broadcast
// activation bytes advances 16 rows at once, each lane is one row's exact integer block
// sum, and the per-row scales are 16 contiguous halves. Same bytes as the original (the
// layout is a permutation), so the model's footprint does not change.
//
// Layout of one group (16 rows) per block, in order:
//   Q4_0 (288 bytes per block of 32):   16 fp16 d; 4 x 64 bytes: vector s, lane r = row r's
//                                        qs[4s .. 4s+3] (low nibbles: elements 4s..4s+3,
//                                        high nibbles: elements 16+4s..16+4s+3)
//   Q8_0 (544 bytes per block of 32):   16 fp16 d; 8 x 64 bytes: vector k, lane r = row r's
//                                        qs[4k .. 4k+3] + 128 (as unsigned bytes)
//   Q4_K (2304 bytes per block of 256): 16 fp16 d; 16 fp16 dmin; 12 x 16 bytes: plane p,
//                                        byte r = row r's scales[p]; 32 x 64 bytes: vector
//                                        8c + k, lane r = row r's qs[32c + 4k .. 32c+4k+3]
// Groups follow each other: group g holds rows [16g, 16g + 16).
//
// Arithmetic, per output (row r, activation row a): for every block b in order, the exact
// integer sum over the block (ggml's: Q4_0 (q - 8) * a; Q8_0 q * a; Q4_K
// sum_j sc_j * <q_j, a_j> and sum_j m_j * sum(a_j)), then
// acc = fma(d_w * d_a, float(isum), acc) (Q4_K: the same with d and, separately, dmin,
// then acc - acc_min). The SIMD kernels (AVX3_DL) and the scalar fallback used on every
// other target do exactly these operations, so results are bit-identical across targets,
// batch sizes, row ranges and thread splits.
//
// Thread safety: pure functions; callers split groups across threads.

#include <cstdint>

#include "engine/gguf/ggml_type.h"

namespace triplane::engine::cpu {

inline constexpr int64_t kInterleaveRows = 16;

// True when `type` has an interleaved layout and a [rows, cols] matrix of it can use it
// (rows a multiple of kInterleaveRows, cols of whole blocks).
bool CanInterleave(GgmlType type, int64_t rows, int64_t cols);

// True when this CPU runs the SIMD interleaved kernels (AVX-512 VNNI); elsewhere they
// fall back to scalar code, so a loader should keep GGUF's layout there.
bool InterleavedKernelsFast();

// Writes rows [16 * group_begin, 16 * group_end) of the GGUF-layout matrix `src` into
// `dst` (a buffer of the whole matrix's size, RowBytes(type, cols) * rows bytes) in the
// interleaved layout. REQUIRES: CanInterleave(type, rows, cols).
void InterleaveRows(GgmlType type, const void* src, int64_t rows, int64_t cols, void* dst,
                    int64_t group_begin, int64_t group_end);

// Copies row `row` of the interleaved matrix `packed` back into GGUF's layout at `dst`
// (RowBytes(type, cols) bytes), e.g. for a token-embedding lookup in a tied output matrix.
void DeinterleaveRow(GgmlType type, const void* packed, int64_t cols, int64_t row, void* dst);

// out[a * out_stride + r] = dot(row r, activations[a]) for a in [0, n_act) and r in
// [row_begin, row_end), from an interleaved matrix. Activations as for MatMul
// (QuantizeActivations(type, ...), act_stride_bytes apart).
// REQUIRES: CanInterleave(type, rows, cols); row_begin and row_end multiples of 16.
void MatMulInterleaved(GgmlType type, const void* packed, int64_t rows, int64_t cols,
                       const void* activations, int64_t n_act, int64_t act_stride_bytes,
                       float* out, int64_t out_stride, int64_t row_begin, int64_t row_end);

}  // namespace triplane::engine::cpu
