#pragma once

// The arithmetic of an 8-bit KV cache (KvType::kQ8_0 in engine/model/kv_cache.h). Every
// key and value vector of one head at one position is stored as int8 with one float
// scale, max |x| / 127 (round to nearest): half the bytes of f16, so attention over a
// long context reads half as much memory.
//
// Layout of one head's part of a block of kKvBlockQ8 positions:
// * keys: [dim / 4][kKvBlockQ8][4] bytes, each the int8 plus 128, so that the block's 16
//   scores of a query are 16 int32 lanes of unsigned x signed byte products (AVX-512
//   VNNI's vpdpbusd takes 4 consecutive bytes per lane);
// * values: [kKvBlockQ8][dim] int8.
// Scales are kept by the caller, one float per position and head.

#include <cstdint>

namespace triplane::engine::cpu {

inline constexpr int64_t kKvBlockQ8 = 16;      // positions per block
inline constexpr int64_t kMaxHeadDimQ8 = 512;  // longest head the kernels take

// Stores key k[0, dim) at `slot` of one head's key block; returns its scale.
// REQUIRES: dim % 4 == 0, 0 <= slot < kKvBlockQ8.
float StoreKeyQ8(const float* k, int64_t dim, int64_t slot, uint8_t* block);

// Stores value v[0, dim) as int8 into row; returns its scale.
float StoreValueQ8(const float* v, int64_t dim, int8_t* row);

// For token t < n_tokens, block b < n_blocks and position j < 16:
// out[t * out_stride + 16 b + j] = (integer dot of q8_t and key j of block b) as float
// * (dq_t * scales[b][j]), where q8_t, dq_t is query q + t * q_stride quantized like a
// key. The integer dot is exact, so every target computes the same bits, whatever the
// batch. REQUIRES: dim % 4 == 0, dim <= kMaxHeadDimQ8.
void ScoreBlocksQ8(const float* q, int64_t q_stride, int64_t n_tokens, const uint8_t* const* blocks,
                   const float* const* scales, int64_t n_blocks, int64_t dim, float* out, int64_t out_stride);

// For t < n_tokens and d < dim: acc[t * acc_stride + d] = fma(p[t * p_stride + j] * s_j,
// v_j[d], ...) for j = 0, 1, ..., len[t] - 1 in that order, where value row j is row
// j % 16 of value block blocks[j / 16] (one head's [16][dim] int8) and s_j is
// scales[j / 16][j % 16]. On a given target every output lane is the same sequence of
// operations whatever n_tokens and the other tokens' len.
void AccumulateRowsQ8(const float* p, int64_t p_stride, const int64_t* len, int64_t n_tokens,
                      const int8_t* const* blocks, const float* const* scales, int64_t dim, float* acc,
                      int64_t acc_stride);

}  // namespace triplane::engine::cpu
