#pragma once

// Random weight matrices and activation rows for kernel tests: Gaussian rows quantized
// with the file quantizers, activations with QuantizeActivations, and their dequantized
// values for error bounds.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/gguf/ggml_type.h"
#include "engine/kernels/cpu/quant.h"

namespace triplane::engine::cpu::kernel_test {

inline std::vector<float> Gaussian(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

struct Problem {
  GgmlType type;
  int64_t rows, cols, n_act;
  int64_t act_stride;                   // bytes, with padding between rows
  std::vector<uint8_t> weights;         // [rows, cols] blocks
  std::vector<uint8_t> activations;     // [n_act] rows of act_stride bytes
  std::vector<float> w_float, a_float;  // dequantized, for magnitudes
};

inline Problem MakeProblemWithCols(GgmlType type, int64_t rows, int64_t n_act, int64_t cols,
                            uint32_t seed) {
  std::mt19937 rng(seed);
  Problem p{type, rows, cols, n_act, 0, {}, {}, {}, {}};
  const int64_t row_bytes = RowBytes(type, p.cols);
  const GgmlType act_type = ActivationType(type);
  p.act_stride = RowBytes(act_type, p.cols) + 64;
  p.weights.resize(static_cast<size_t>(rows * row_bytes));
  p.activations.resize(static_cast<size_t>(n_act * p.act_stride));
  p.w_float.resize(static_cast<size_t>(rows * p.cols));
  p.a_float.resize(static_cast<size_t>(n_act * p.cols));
  for (int64_t r = 0; r < rows; ++r) {
    auto x = Gaussian(p.cols, rng);
    uint8_t* dst = p.weights.data() + r * row_bytes;
    EXPECT_TRUE(QuantizeRow(type, x.data(), dst, p.cols).ok());
    EXPECT_TRUE(DequantizeRow(type, dst, p.w_float.data() + r * p.cols, p.cols).ok());
  }
  for (int64_t a = 0; a < n_act; ++a) {
    auto x = Gaussian(p.cols, rng);
    uint8_t* dst = p.activations.data() + a * p.act_stride;
    QuantizeActivations(type, x.data(), p.cols, dst);
    EXPECT_TRUE(DequantizeRow(act_type, dst, p.a_float.data() + a * p.cols, p.cols).ok());
  }
  return p;
}

inline const uint8_t* WeightRow(const Problem& p, int64_t r) {
  return p.weights.data() + r * RowBytes(p.type, p.cols);
}
inline const uint8_t* ActRow(const Problem& p, int64_t a) {
  return p.activations.data() + a * p.act_stride;
}

inline double Magnitude(const Problem& p, int64_t r, int64_t a) {
  double m = 0;
  for (int64_t i = 0; i < p.cols; ++i) {
    m += std::fabs(double{p.w_float[r * p.cols + i]} * p.a_float[a * p.cols + i]);
  }
  return m;
}

inline double Exact(const Problem& p, int64_t r, int64_t a) {
  double s = 0;
  for (int64_t i = 0; i < p.cols; ++i)
    s += double{p.w_float[r * p.cols + i]} * p.a_float[a * p.cols + i];
  return s;
}

}  // namespace triplane::engine::cpu::kernel_test
