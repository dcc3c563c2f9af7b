#include "engine/kernels/cpu/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/kernels/cpu/fp16.h"

namespace triplane::engine::cpu {
namespace {

std::vector<float> Gaussian(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<uint8_t> Quantize(GgmlType type, const std::vector<float>& x) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(static_cast<size_t>(RowBytes(type, n)));
  EXPECT_TRUE(QuantizeRow(type, x.data(), q.data(), n).ok());
  return q;
}

std::vector<float> Dequantize(GgmlType type, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  EXPECT_TRUE(DequantizeRow(type, q.data(), y.data(), n).ok());
  return y;
}

double RelativeRmsError(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (double{x[i]} - y[i]) * (double{x[i]} - y[i]);
    ref += double{x[i]} * x[i];
  }
  return std::sqrt(err / ref);
}

TEST(QuantTest, BlockSizesMatchGgufGeometry) {
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0,
                        GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ8_K}) {
    const auto traits = GetGgmlTypeTraits(static_cast<uint32_t>(type));
    ASSERT_TRUE(traits.has_value());
    EXPECT_EQ(RowBytes(type, traits->block_elements), traits->block_bytes) << traits->name;
    EXPECT_TRUE(IsCpuTensorType(type));
  }
  EXPECT_FALSE(IsCpuTensorType(GgmlType::kQ5_K));
  EXPECT_FALSE(IsCpuWeightType(GgmlType::kQ8_K));
  EXPECT_EQ(ActivationType(GgmlType::kQ4_0), GgmlType::kQ8_0);
  EXPECT_EQ(ActivationType(GgmlType::kQ8_0), GgmlType::kQ8_0);
  EXPECT_EQ(ActivationType(GgmlType::kQ4_K), GgmlType::kQ8_K);
  EXPECT_EQ(ActivationType(GgmlType::kQ6_K), GgmlType::kQ8_K);
  EXPECT_EQ(ActivationType(GgmlType::kBF16), GgmlType::kBF16);
}

TEST(QuantTest, RejectsUnknownTypesAndPartialBlocks) {
  std::vector<float> x(64);
  std::vector<uint8_t> q(512);
  EXPECT_EQ(QuantizeRow(GgmlType::kQ5_K, x.data(), q.data(), 64).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QuantizeRow(GgmlType::kQ8_0, x.data(), q.data(), 40).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DequantizeRow(GgmlType::kQ4_K, q.data(), x.data(), 64).code(),
            absl::StatusCode::kInvalidArgument);
}

// Layouts below are worked out by hand from ggml-common.h and ggml-quants.c.
TEST(QuantTest, Q8_0BlockLayout) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  const auto q = Quantize(GgmlType::kQ8_0, x);
  ASSERT_EQ(q.size(), 34u);
  // d = 16/127 -> fp16 0x3008 (little endian); q = round(x * 127/16) ties away from zero.
  EXPECT_EQ(q[0], 0x08);
  EXPECT_EQ(q[1], 0x30);
  EXPECT_EQ(static_cast<int8_t>(q[2 + 0]), -127);
  EXPECT_EQ(static_cast<int8_t>(q[2 + 1]), -119);  // -15 * 7.9375 = -119.06
  EXPECT_EQ(static_cast<int8_t>(q[2 + 16]), 0);
  EXPECT_EQ(static_cast<int8_t>(q[2 + 17]), 8);  // 7.9375
  EXPECT_EQ(static_cast<int8_t>(q[2 + 31]), 119);
}

TEST(QuantTest, Q4_0BlockLayout) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = 0.5f * static_cast<float>(j - 16);
  const auto q = Quantize(GgmlType::kQ4_0, x);
  ASSERT_EQ(q.size(), 18u);
  // The extreme -8 maps to q = 0: d = -8 / -8 = 1 (fp16 0x3c00); q = min(15, trunc(x + 8.5)).
  EXPECT_EQ(q[0], 0x00);
  EXPECT_EQ(q[1], 0x3c);
  EXPECT_EQ(q[2 + 0], 0x80);   // element 0: q 0; element 16 (x = 0): q 8
  EXPECT_EQ(q[2 + 1], 0x91);   // element 1 (-7.5): 1; element 17 (0.5): 9
  EXPECT_EQ(q[2 + 15], 0xf8);  // element 15 (-0.5): 8; element 31 (7.5): 16 -> 15
  const auto y = Dequantize(GgmlType::kQ4_0, q, 32);
  EXPECT_EQ(y[0], -8.0f);
  EXPECT_EQ(y[31], 7.0f);
}

TEST(QuantTest, Q4_KBlockLayout) {
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = static_cast<float>(i % 16);
  const auto q = Quantize(GgmlType::kQ4_K, x);
  ASSERT_EQ(q.size(), 144u);
  // Every sub-block fits exactly with scale 1 and min 0: 6-bit scales all 63 relative
  // to d = fp16(1/63) = 0x2410, mins all 0 (dmin = 0).
  EXPECT_EQ(q[0], 0x10);
  EXPECT_EQ(q[1], 0x24);
  EXPECT_EQ(q[2], 0x00);
  EXPECT_EQ(q[3], 0x00);
  for (int j = 0; j < 4; ++j) EXPECT_EQ(q[4 + j], 0xff) << j;   // 63 | (63 >> 4) << 6
  for (int j = 4; j < 8; ++j) EXPECT_EQ(q[4 + j], 0x00) << j;   // mins 0..3
  for (int j = 8; j < 12; ++j) EXPECT_EQ(q[4 + j], 0x0f) << j;  // low nibbles of 4..7
  for (int l = 0; l < 128; ++l) EXPECT_EQ(q[16 + l], 0x11 * (l % 16)) << l;
  const auto y = Dequantize(GgmlType::kQ4_K, q, 256);
  EXPECT_LT(RelativeRmsError(x, y), 1e-3);
}

TEST(QuantTest, Q6_KBlockLayout) {
  // Each 16-element sub-block holds -32 and values in [-31, 31]: it fits exactly with
  // scale 1, so L = x + 32 and the block scale is -1/128 with 8-bit scales of -128.
  std::vector<float> x(256);
  std::vector<int> L(256);
  for (int i = 0; i < 256; ++i) {
    x[i] = i % 16 == 0 ? -32.0f : static_cast<float>((i * 7) % 63 - 31);
    L[i] = static_cast<int>(x[i]) + 32;
  }
  const auto q = Quantize(GgmlType::kQ6_K, x);
  ASSERT_EQ(q.size(), 210u);
  const uint8_t* ql = q.data();
  const uint8_t* qh = q.data() + 128;
  const auto* scales = reinterpret_cast<const int8_t*>(q.data() + 192);
  EXPECT_EQ(q[208], 0x00);  // d = fp16(-1/128) = 0xa000
  EXPECT_EQ(q[209], 0xa0);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(scales[j], -128) << j;
  // Per 128 elements h: ql[64h + l] = L[l] | L[l + 64] << 4, ql[64h + 32 + l] =
  // L[l + 32] | L[l + 96] << 4, qh[32h + l] = high 2 bits of L[l], L[l+32], L[l+64], L[l+96].
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const int* Lh = L.data() + 128 * h;
      EXPECT_EQ(ql[64 * h + l], (Lh[l] & 15) | (Lh[l + 64] & 15) << 4);
      EXPECT_EQ(ql[64 * h + 32 + l], (Lh[l + 32] & 15) | (Lh[l + 96] & 15) << 4);
      EXPECT_EQ(qh[32 * h + l], (Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 | (Lh[l + 64] >> 4) << 4 |
                                    (Lh[l + 96] >> 4) << 6);
    }
  }
  // Element 1: x = -24 (L 8); 33: 11 (L 43); 65: -17 (L 15); 97: 18 (L 50).
  EXPECT_EQ(ql[1], 0xf8);  // 8 | 15 << 4
  EXPECT_EQ(qh[1], 0xc8);  // 0 | (43 >> 4) << 2 | 0 << 4 | (50 >> 4) << 6
  const auto y = Dequantize(GgmlType::kQ6_K, q, 256);
  EXPECT_EQ(y, x);
}

TEST(QuantTest, Q8_KActivationsKeepBlockSums) {
  auto x = Gaussian(512, 3);
  std::vector<BlockQ8_K> q(2);
  QuantizeActivations(GgmlType::kQ4_K, x.data(), 512, q.data());
  for (const auto& b : q) {
    int max_abs = 0;
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) {
        sum += b.qs[16 * g + j];
        max_abs = std::max(max_abs, std::abs(int{b.qs[16 * g + j]}));
      }
      EXPECT_EQ(b.bsums[g], sum);
    }
    EXPECT_EQ(max_abs, 127);  // the extreme maps to -127 exactly
  }
}

TEST(QuantTest, Q8_0ActivationsRoundTiesToEvenWithMultiplier127OverAmax) {
  // amax 127 -> multiplier exactly 1: x = 0.5 and 2.5 are ties; llama.cpp's x86 path
  // rounds them to even (0 and 2), the file quantizer away from zero (1 and 3).
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 0.5f;
  x[2] = 2.5f;
  x[3] = -1.5f;
  BlockQ8_0 act;
  QuantizeActivations(GgmlType::kQ4_0, x.data(), 32, &act);
  EXPECT_EQ(act.d, Fp32ToFp16(1.0f));
  EXPECT_EQ(act.qs[0], 127);
  EXPECT_EQ(act.qs[1], 0);
  EXPECT_EQ(act.qs[2], 2);
  EXPECT_EQ(act.qs[3], -2);
  const auto file = Quantize(GgmlType::kQ8_0, x);
  EXPECT_EQ(static_cast<int8_t>(file[2 + 1]), 1);
  EXPECT_EQ(static_cast<int8_t>(file[2 + 2]), 3);
}

struct ErrorBound {
  GgmlType type;
  double max_relative_rms;
};

class QuantErrorTest : public ::testing::TestWithParam<ErrorBound> {};

TEST_P(QuantErrorTest, RoundTripErrorOfGaussianRowIsBounded) {
  const auto [type, bound] = GetParam();
  const int64_t n = 4096;
  const auto x = Gaussian(n, 11);
  const auto y = Dequantize(type, Quantize(type, x), n);
  const double err = RelativeRmsError(x, y);
  EXPECT_LT(err, bound);
  EXPECT_GT(err, bound / 20) << "suspiciously exact for a lossy type";
}

INSTANTIATE_TEST_SUITE_P(
    Types, QuantErrorTest,
    ::testing::Values(ErrorBound{GgmlType::kF16, 5e-4}, ErrorBound{GgmlType::kBF16, 4e-3},
                    ErrorBound{GgmlType::kQ8_0, 0.01}, ErrorBound{GgmlType::kQ4_0, 0.12},
                    ErrorBound{GgmlType::kQ4_K, 0.10}, ErrorBound{GgmlType::kQ6_K, 0.03},
                    ErrorBound{GgmlType::kQ8_K, 0.01}),
    [](const auto& info) {
      return std::string(GetGgmlTypeTraits(static_cast<uint32_t>(info.param.type))->name);
    });

TEST(QuantTest, AllZeroBlocksStayZero) {
  std::vector<float> x(256, 0.0f);
  for (GgmlType type :
       {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ8_K}) {
    const auto y = Dequantize(type, Quantize(type, x), 256);
    EXPECT_EQ(y, x);
  }
}

}  // namespace
}  // namespace triplane::engine::cpu
