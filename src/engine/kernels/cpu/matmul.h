#pragma once

// Dot products, mat-vec and mat-mat over GGUF weight rows, on the CPU.
//
// A weight matrix is [rows, cols] in row-major blocks of its type (RowBytes(type, cols)
// bytes per row, rows contiguous). Activations are already converted with
// QuantizeActivations(type, ...) into ActivationType(type). Each output is the dot
// product of one weight row with one activation row, with ggml's exact integer
// arithmetic inside blocks; only float accumulation order differs from the reference.
// Rows must be aligned like their blocks (2 bytes; 4 for F32 and Q8_K), as GGUF's
// 32-byte tensor alignment and even block sizes guarantee.
//
// The SIMD versions are compiled for every x86 target Highway 1.0.3 knows (AVX3_DL with
// AVX-512 VNNI, AVX3, AVX2, SSE4, SSSE3, EMU128) and picked at run time
// (HWY_DYNAMIC_DISPATCH). Thread safety: pure functions; callers split row ranges
// across threads and each thread writes only its rows of `out`.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/gguf/ggml_type.h"
#include "engine/kernels/cpu/quant.h"

namespace triplane::engine::cpu {

// Scalar reference: dot of one weight row [n] with one activation row [n], following
// ggml's generic C kernels operation by operation. Slow; for tests and debugging.
// REQUIRES: IsCpuWeightType(weight_type), n a multiple of the weight block size.
float VecDotRef(GgmlType weight_type, const void* w_row, const void* activation_row, int64_t n);

// The same dot product with the best SIMD kernel for this CPU. Same requirements.
float VecDot(GgmlType weight_type, const void* w_row, const void* activation_row, int64_t n);

// out[r] = dot(weights[r, :], activation) for r in [row_begin, row_end).
// weights: [rows, cols] blocks of `type`; activation: [cols] in ActivationType(type);
// out: [rows] floats, only [row_begin, row_end) written. Streams each weight row once.
// REQUIRES: IsCpuWeightType(type), cols a multiple of the block size,
// 0 <= row_begin <= row_end <= rows.
void MatVec(GgmlType type, const void* weights, int64_t rows, int64_t cols, const void* activation,
            float* out, int64_t row_begin, int64_t row_end);

// out[a * out_stride + r] = dot(weights[r, :], activations[a]) for a in [0, n_act) and
// r in [row_begin, row_end). Activation row a starts at
// (const char*)activations + a * act_stride_bytes, in ActivationType(type).
// From 3 activation rows up, register-tiled kernels unpack each weight row once per block
// of activations that fits in L2 (up to a few hundred rows) and reuse it across them.
// Every output is bit-identical to VecDot of its (row, activation) pair, whatever n_act,
// so prefill and token-by-token decode agree exactly.
// REQUIRES: as MatVec, plus n_act >= 0 and out_stride >= rows.
void MatMul(GgmlType type, const void* weights, int64_t rows, int64_t cols, const void* activations,
            int64_t n_act, int64_t act_stride_bytes, float* out, int64_t out_stride,
            int64_t row_begin, int64_t row_end);

// out[i] = x[i] rounded to f16 (nearest even, as Fp32ToFp16), with the CPU's
// conversion instructions where it has them.
void ConvertToF16(const float* x, int64_t n, uint16_t* out);

// x[i] = x[i] rounded to f16 and back (nearest even).
void RoundToF16(float* x, int64_t n);

// g[i] = silu(g[i]) * u[i] = g[i] / (1 + exp(-g[i])) * u[i] (the gated feed-forward's
// activation), vectorized; exp's argument is capped at 80.
void SiluMul(float* g, const float* u, int64_t n);

// The position of the largest of x[0, n), the first one on ties (std::max_element's
// answer), vectorized; with NaNs among them, std::max_element's answer. -1 when n <= 0.
int64_t ArgMax(const float* x, int64_t n);

// out[i] = exp((x[i] - shift) * scale) for i in [0, n) (a polynomial exp, vectorized);
// returns their sum. For sampling: shift the largest logit, scale 1 / temperature.
double ExpScaled(const float* x, int64_t n, float shift, float scale, float* out);

// Attention weights: x[i] = exp(scale * x[i] - m) / sum over j < n of exp(scale * x[j] - m),
// m the largest scale * x[j], each rounded to f16 and back (the f16 cache's arithmetic),
// for i in [0, n). Vectorized (a polynomial exp, float sums); the same bits for the same
// row on a given target, whatever else is in the batch. REQUIRES: n >= 1.
void SoftmaxF16(float* x, int64_t n, float scale);

// For t in [0, n_tokens) and d in [0, dim): acc[t * acc_stride + d] =
// fma(p[t * p_stride + j], rows[j][d], ...) for j = 0, 1, ..., len[t] - 1 in that order
// (rows: f16 vectors, e.g. attention values; p: weights). On a given target every output
// lane is the same sequence of multiply-adds whatever n_tokens and the other tokens' len.
void AccumulateRowsF16(const float* p, int64_t p_stride, const int64_t* len, int64_t n_tokens,
                       const uint16_t* const* rows, int64_t dim, float* acc, int64_t acc_stride);

// Column-major dot products over blocks of 16 columns, e.g. attention scores against
// key blocks stored transposed: for block b < n_blocks, column j < 16 and token
// t < n_tokens, out[t * out_stride + 16 b + j] = sum over e < dim of
// q[t * q_stride + e] * blocks[b][e * kt_stride + j] (f16), accumulated by multiply-adds
// in e order (columns are vector lanes: no reduction). On a given target each output is
// the same sequence of operations whatever n_tokens and n_blocks.
void ScoreBlocksF16(const float* q, int64_t q_stride, int64_t n_tokens, const uint16_t* const* blocks,
                    int64_t n_blocks, int64_t kt_stride, int64_t dim, float* out, int64_t out_stride);

// Highway targets (hwy::Target bits) the kernels were compiled for that this CPU
// supports, best first; tests run each of them with hwy::SetSupportedTargetsForTest.
std::vector<int64_t> KernelTargets();

// Name of the target the dispatched kernels currently use, e.g. "AVX3_DL".
std::string ActiveKernelTarget();

}  // namespace triplane::engine::cpu
