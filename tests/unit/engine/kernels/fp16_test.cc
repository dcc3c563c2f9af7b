#include "engine/kernels/cpu/fp16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

namespace triplane::engine::cpu {
namespace {

// GCC's _Float16 converts with the IEEE rounding the hardware uses (ties to even): an
// oracle independent of our bit manipulation.
uint16_t OracleFp16(float f) { return std::bit_cast<uint16_t>(static_cast<_Float16>(f)); }

TEST(Fp16Test, EveryHalfWidensExactlyAndNarrowsBack) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = Fp16ToFp32(static_cast<uint16_t>(h));
    const float oracle = static_cast<float>(std::bit_cast<_Float16>(static_cast<uint16_t>(h)));
    EXPECT_EQ(std::bit_cast<uint32_t>(f), std::bit_cast<uint32_t>(oracle)) << h;
    if (std::isnan(f)) {
      EXPECT_EQ(Fp32ToFp16(f) & 0x7e00, 0x7e00) << h;
    } else {
      EXPECT_EQ(Fp32ToFp16(f), h) << h;
    }
  }
}

TEST(Fp16Test, NarrowingRoundsToNearestEvenLikeHardware) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 2'000'000; ++i) {
    const float f = std::bit_cast<float>(bits(rng));
    if (std::isnan(f)) continue;
    ASSERT_EQ(Fp32ToFp16(f), OracleFp16(f)) << std::hexfloat << f;
  }
  // Ties: 1 + 2^-11 lies halfway between 1 and the next half; even mantissa wins.
  EXPECT_EQ(Fp32ToFp16(1.0f + 0x1p-11f), 0x3c00);
  EXPECT_EQ(Fp32ToFp16(1.0f + 3 * 0x1p-11f), 0x3c02);
  EXPECT_EQ(Fp32ToFp16(65504.0f), 0x7bff);
  EXPECT_EQ(Fp32ToFp16(65520.0f), 0x7c00);   // rounds up to infinity
  EXPECT_EQ(Fp32ToFp16(-0x1p-25f), 0x8000);  // half of the smallest subnormal: ties to 0
  EXPECT_EQ(Fp32ToFp16(0x1p-24f * 1.5f), 0x0002);
  EXPECT_EQ(Fp32ToFp16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(Fp32ToFp16(-std::numeric_limits<float>::quiet_NaN()), 0xfe00);
}

TEST(Bf16Test, RoundsToNearestEvenAndKeepsNaNQuiet) {
  EXPECT_EQ(Fp32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(Fp32ToBf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(Fp32ToBf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(Fp32ToBf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_EQ(Fp32ToBf16(std::bit_cast<float>(0x7f800001u)), 0x7fc0);  // signalling NaN
  EXPECT_EQ(Bf16ToFp32(0xc040), -3.0f);
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = Bf16ToFp32(static_cast<uint16_t>(b));
    if (!std::isnan(f)) {
      EXPECT_EQ(Fp32ToBf16(f), b);
    }
  }
}

}  // namespace
}  // namespace triplane::engine::cpu
