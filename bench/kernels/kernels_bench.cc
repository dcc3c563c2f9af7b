// Single-thread throughput of the CPU mat-vec (decode) and mat-mat (prefill) kernels.
// bytes_per_second counts weight bytes streamed: decode is memory-bound, so MatVec
// should approach one core's DRAM bandwidth once the matrix is larger than the caches.
// MatMul reports GMAC/s (rows * cols * activation rows multiply-adds per second): prefill
// is compute-bound.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "engine/kernels/cpu/matmul.h"
#include "engine/kernels/cpu/quant.h"

namespace triplane::engine::cpu {
namespace {

struct Matrix {
  std::vector<uint8_t> weights;      // [rows, cols] blocks
  std::vector<uint8_t> activations;  // [n_act, cols] in the activation type
  int64_t act_stride = 0;
};

Matrix MakeMatrix(GgmlType type, int64_t rows, int64_t cols, int64_t n_act) {
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> row(static_cast<size_t>(cols));
  Matrix m;
  const int64_t row_bytes = RowBytes(type, cols);
  m.weights.resize(static_cast<size_t>(rows * row_bytes));
  // Quantizing every row with the reference K-quant search is slow: quantize a few
  // distinct rows and repeat them (the kernels' speed does not depend on the values).
  constexpr int64_t kDistinct = 16;
  for (int64_t r = 0; r < rows; ++r) {
    if (r < kDistinct) {
      for (float& x : row) x = dist(rng);
      (void)QuantizeRow(type, row.data(), m.weights.data() + r * row_bytes, cols);
    } else {
      std::copy_n(m.weights.data() + (r % kDistinct) * row_bytes, row_bytes,
                  m.weights.data() + r * row_bytes);
    }
  }
  m.act_stride = RowBytes(ActivationType(type), cols);
  m.activations.resize(static_cast<size_t>(n_act * m.act_stride));
  for (int64_t a = 0; a < n_act; ++a) {
    for (float& x : row) x = dist(rng);
    QuantizeActivations(type, row.data(), cols, m.activations.data() + a * m.act_stride);
  }
  return m;
}

void BM_MatVec(benchmark::State& state, GgmlType type) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const Matrix m = MakeMatrix(type, rows, cols, 1);
  std::vector<float> out(static_cast<size_t>(rows));
  for (auto _ : state) {
    MatVec(type, m.weights.data(), rows, cols, m.activations.data(), out.data(), 0, rows);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(m.weights.size()));
  state.SetLabel(ActiveKernelTarget());
}

void BM_MatMul(benchmark::State& state, GgmlType type) {
  const int64_t rows = state.range(0), cols = state.range(1), n_act = state.range(2);
  const Matrix m = MakeMatrix(type, rows, cols, n_act);
  std::vector<float> out(static_cast<size_t>(rows * n_act));
  for (auto _ : state) {
    MatMul(type, m.weights.data(), rows, cols, m.activations.data(), n_act, m.act_stride,
           out.data(), rows, 0, rows);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(m.weights.size()));
  state.counters["GMAC/s"] = benchmark::Counter(
      static_cast<double>(rows * cols * n_act) * static_cast<double>(state.iterations()) / 1e9,
      benchmark::Counter::kIsRate);
  state.SetLabel(ActiveKernelTarget());
}

void Shapes(benchmark::internal::Benchmark* b) {
  b->Args({768, 768})->Args({4096, 4096})->Args({2048, 8192})->Unit(benchmark::kMicrosecond);
}

// Prefill of a 110M-parameter Llama (dim 768, hidden 2048, vocab 32000): each projection
// [rows, cols] times a batch of 128 token rows; plus small decode batches.
void MatMulShapes(benchmark::internal::Benchmark* b) {
  b->Args({768, 768, 128})
      ->Args({2048, 768, 128})
      ->Args({768, 2048, 128})
      ->Args({32000, 768, 128})
      ->Args({4096, 4096, 2})
      ->Args({4096, 4096, 8})
      ->Unit(benchmark::kMillisecond);
}

#define TRIPLANE_KERNEL_BENCH(type)                                     \
  BENCHMARK_CAPTURE(BM_MatVec, type, GgmlType::k##type)->Apply(Shapes); \
  BENCHMARK_CAPTURE(BM_MatMul, type, GgmlType::k##type)->Apply(MatMulShapes)

TRIPLANE_KERNEL_BENCH(F32);
TRIPLANE_KERNEL_BENCH(F16);
TRIPLANE_KERNEL_BENCH(BF16);
TRIPLANE_KERNEL_BENCH(Q8_0);
TRIPLANE_KERNEL_BENCH(Q4_0);
TRIPLANE_KERNEL_BENCH(Q4_K);
TRIPLANE_KERNEL_BENCH(Q6_K);

}  // namespace
}  // namespace triplane::engine::cpu

BENCHMARK_MAIN();
