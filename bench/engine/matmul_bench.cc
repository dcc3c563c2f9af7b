// matmul_bench: throughput of the interleaved mat-mat kernel (the decode step's matrix
// multiplies) on one weight matrix, in GMAC/s (1e9 multiply-adds per second).
//
// Builds a random [rows, cols] Q8_0 or Q4_0 matrix in the interleaved layout the engine
// loads weights into, quantizes `acts` random activation rows, and times
// MatMulInterleaved over the whole matrix, the rows split into one contiguous range per
// thread (as the forward pass splits them). Reports the best of `trials` timed runs of at
// least `min_ms` each. A matrix that fits in the L2 cache measures the kernel's
// arithmetic; one far larger than the last-level cache measures how it streams weights
// from memory. Output: one JSON object,
//
//   {"type": "q8_0", "rows": 2048, "cols": 768, "acts": 16, "threads": 1,
//    "kernel_target": "AVX3_DL", "best_gmac_per_s": 231.4, "weight_gb_per_s": 15.4}
//
//   matmul_bench --rows 2048 --cols 768 --acts 16 --threads 1
//   matmul_bench --peak          # {"peak_gmac_per_s": ...}: one thread's vpdpbusd ceiling

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "engine/gguf/ggml_type.h"
#include "engine/kernels/cpu/interleaved.h"
#include "engine/kernels/cpu/quant.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define TRIPLANE_HAVE_VNNI_PEAK 1
#endif

namespace {

using Clock = std::chrono::steady_clock;
using triplane::engine::GgmlType;
namespace cpu = triplane::engine::cpu;

#ifdef TRIPLANE_HAVE_VNNI_PEAK
// The machine's ceiling for the kernel's core instruction: 12 independent chains of
// 512-bit vpdpbusd (64 multiply-adds each), enough to cover its latency on every port
// that runs it. GMAC/s on this thread, best of `trials` runs of `iterations` rounds.
__attribute__((target("avx512f,avx512vnni"))) double VnniPeak(int trials, int64_t iterations) {
  double best = 0;
  for (int trial = 0; trial < trials; ++trial) {
    __m512i acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_epi32(i);
    __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(5);
    const auto start = Clock::now();
    for (int64_t n = 0; n < iterations; ++n) {
      for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
      asm volatile("" : "+v"(a));  // keeps the loop from being folded away
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    alignas(64) int32_t lanes[16];
    int32_t sink = 0;
    for (int i = 0; i < 12; ++i) {
      _mm512_store_si512(lanes, acc[i]);
      sink += lanes[0];
    }
    asm volatile("" : : "r"(sink));
    best = std::max(best, static_cast<double>(iterations) * 12 * 64 / seconds / 1e9);
  }
  return best;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 2048, cols = 768, acts = 16;
  int threads = 1, trials = 20;
  double min_ms = 20;
  std::string type_name = "q8_0";
  bool peak = false;
  CLI::App app{"Throughput of the interleaved mat-mat kernel on one weight matrix"};
  app.add_option("--rows", rows, "matrix rows (a multiple of 16)")->check(CLI::Range(int64_t{16}, int64_t{1} << 22));
  app.add_option("--cols", cols, "matrix columns (a multiple of 32)")->check(CLI::Range(int64_t{32}, int64_t{1} << 16));
  app.add_option("--acts", acts, "activation rows (sequences in a decode step)")->check(CLI::Range(1, 4096));
  app.add_option("--threads", threads, "threads splitting the rows")->check(CLI::Range(1, 1024));
  app.add_option("--trials", trials, "timed runs; the best is reported")->check(CLI::Range(1, 1000));
  app.add_option("--min-ms", min_ms, "shortest timed run, in milliseconds")->check(CLI::Range(1.0, 60000.0));
  app.add_option("--type", type_name, "weight type")->check(CLI::IsMember({"q8_0", "q4_0"}));
  app.add_flag("--peak", peak, "measure the vpdpbusd ceiling of one thread instead (AVX-512 VNNI CPUs)");
  CLI11_PARSE(app, argc, argv);
  if (peak) {
#ifdef TRIPLANE_HAVE_VNNI_PEAK
    if (__builtin_cpu_supports("avx512vnni")) {
      std::printf("{\"peak_gmac_per_s\": %.1f}\n", VnniPeak(trials, 20'000'000));
      return 0;
    }
#endif
    std::fprintf(stderr, "matmul_bench: --peak needs a CPU with AVX-512 VNNI\n");
    return 1;
  }
  const GgmlType type = type_name == "q4_0" ? GgmlType::kQ4_0 : GgmlType::kQ8_0;
  if (!cpu::CanInterleave(type, rows, cols)) {
    std::fprintf(stderr, "matmul_bench: a %s matrix of %lld x %lld cannot be interleaved (rows %% 16, cols %% 32)\n",
                 type_name.c_str(), static_cast<long long>(rows), static_cast<long long>(cols));
    return 1;
  }

  // Random weights: quantize random floats row by row, then interleave.
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t row_bytes = cpu::RowBytes(type, cols);
  std::vector<uint8_t> gguf(static_cast<size_t>(row_bytes * rows)), packed(gguf.size());
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = normal(rng);
    if (!cpu::QuantizeRow(type, row.data(), gguf.data() + r * row_bytes, cols).ok()) return 1;
  }
  cpu::InterleaveRows(type, gguf.data(), rows, cols, packed.data(), 0, rows / cpu::kInterleaveRows);
  const int64_t act_bytes = cpu::RowBytes(cpu::ActivationType(type), cols);
  std::vector<uint8_t> activations(static_cast<size_t>(act_bytes * acts));
  for (int64_t a = 0; a < acts; ++a) {
    for (float& v : row) v = normal(rng);
    cpu::QuantizeActivations(type, row.data(), cols, activations.data() + a * act_bytes);
  }
  std::vector<float> out(static_cast<size_t>(rows * acts));

  // One pass: every thread multiplies its contiguous range of 16-row groups.
  const int64_t groups = rows / cpu::kInterleaveRows;
  auto range = [&](int t, int64_t* begin, int64_t* end) {
    *begin = groups * t / threads * cpu::kInterleaveRows;
    *end = groups * (t + 1) / threads * cpu::kInterleaveRows;
  };
  auto pass = [&](int t) {
    int64_t begin = 0, end = 0;
    range(t, &begin, &end);
    if (begin < end) {
      cpu::MatMulInterleaved(type, packed.data(), rows, cols, activations.data(), acts, act_bytes, out.data(),
                             rows, begin, end);
    }
  };
  // Passes per timed run: enough for min_ms, from one untimed single pass.
  const auto t0 = Clock::now();
  pass(0);
  const double one = std::max(1e-7, std::chrono::duration<double>(Clock::now() - t0).count() * threads);
  const int64_t reps = std::max<int64_t>(1, static_cast<int64_t>(min_ms / 1e3 / one * threads));

  double best = 0;
  std::barrier sync(threads);
  for (int trial = 0; trial < trials; ++trial) {
    Clock::time_point start;
    std::vector<std::thread> team;
    auto work = [&](int t) {
      sync.arrive_and_wait();
      if (t == 0) start = Clock::now();
      for (int64_t i = 0; i < reps; ++i) pass(t);
      sync.arrive_and_wait();
    };
    for (int t = 1; t < threads; ++t) team.emplace_back(work, t);
    work(0);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    for (auto& th : team) th.join();
    best = std::max(best, static_cast<double>(reps) * rows * cols * acts / seconds / 1e9);
  }
  const double weight_gb = best / static_cast<double>(acts * cols) * static_cast<double>(row_bytes);
  std::printf(
      "{\"type\": \"%s\", \"rows\": %lld, \"cols\": %lld, \"acts\": %lld, \"threads\": %d, \"kernel_target\": \"%s\", "
      "\"best_gmac_per_s\": %.1f, \"weight_gb_per_s\": %.1f}\n",
      type_name.c_str(), static_cast<long long>(rows), static_cast<long long>(cols), static_cast<long long>(acts),
      threads, cpu::InterleavedKernelsFast() ? "AVX3_DL" : "scalar", best, weight_gb);
  return 0;
}
