// Interleaved weights: the layout round-trips, and MatMulInterleaved agrees with the
// scalar reference dot product on every target, bit-identically across targets, batch
// sizes and row ranges.

#include "engine/kernels/cpu/interleaved.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "engine/kernels/cpu/matmul.h"
#include "engine/kernels/cpu/quant.h"
#include "hwy/targets.h"
#include "testing/kernel_problem.h"

namespace triplane::engine::cpu {
namespace {

using kernel_test::ActRow;
using kernel_test::MakeProblemWithCols;
using kernel_test::Magnitude;
using kernel_test::Problem;
using kernel_test::WeightRow;

constexpr GgmlType kTypes[] = {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K};

std::string TypeName(GgmlType type) {
  return std::string(GetGgmlTypeTraits(static_cast<uint32_t>(type))->name);
}

int64_t InterleavedCols(GgmlType type) { return type == GgmlType::kQ4_K ? 3 * 256 : 23 * 32; }

std::vector<uint8_t> Interleave(const Problem& p) {
  std::vector<uint8_t> packed(p.weights.size());
  InterleaveRows(p.type, p.weights.data(), p.rows, p.cols, packed.data(), 0, p.rows / 16);
  return packed;
}

std::vector<float> Multiply(const Problem& p, const std::vector<uint8_t>& packed, int64_t n_act,
                       int64_t row_begin, int64_t row_end) {
  std::vector<float> out(static_cast<size_t>(n_act * p.rows), -1.0f);
  MatMulInterleaved(p.type, packed.data(), p.rows, p.cols, p.activations.data(), n_act,
                    p.act_stride, out.data(), p.rows, row_begin, row_end);
  return out;
}

TEST(InterleavedTest, AcceptsOnlyWholeGroupsOfSupportedTypes) {
  EXPECT_TRUE(CanInterleave(GgmlType::kQ4_0, 32, 64));
  EXPECT_TRUE(CanInterleave(GgmlType::kQ4_K, 16, 256));
  EXPECT_FALSE(CanInterleave(GgmlType::kQ4_0, 24, 64));   // not whole groups
  EXPECT_FALSE(CanInterleave(GgmlType::kQ4_K, 16, 128));  // not whole super-blocks
  EXPECT_FALSE(CanInterleave(GgmlType::kQ6_K, 16, 256));
  EXPECT_FALSE(CanInterleave(GgmlType::kF16, 16, 256));
  EXPECT_FALSE(CanInterleave(GgmlType::kQ8_0, 0, 32));
}

TEST(InterleavedTest, EveryRowDeinterleavesToItsOriginalBytes) {
  for (GgmlType type : kTypes) {
    const Problem p = MakeProblemWithCols(type, 48, 0, InterleavedCols(type), 3);
    const std::vector<uint8_t> packed = Interleave(p);
    ASSERT_NE(packed, p.weights) << TypeName(type);
    const int64_t row_bytes = RowBytes(type, p.cols);
    std::vector<uint8_t> row(static_cast<size_t>(row_bytes));
    for (int64_t r = 0; r < p.rows; ++r) {
      DeinterleaveRow(type, packed.data(), p.cols, r, row.data());
      ASSERT_EQ(std::memcmp(row.data(), WeightRow(p, r), row.size()), 0) << TypeName(type) << " row " << r;
    }
  }
}

class InterleavedKernelTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { hwy::SetSupportedTargetsForTest(GetParam()); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

TEST_P(InterleavedKernelTest, MatchesReferenceDot) {
  for (GgmlType type : kTypes) {
    const Problem p = MakeProblemWithCols(type, 48, 6, InterleavedCols(type), 7);
    const std::vector<float> out = Multiply(p, Interleave(p), p.n_act, 0, p.rows);
    for (int64_t a = 0; a < p.n_act; ++a) {
      for (int64_t r = 0; r < p.rows; ++r) {
        const float ref = VecDotRef(type, WeightRow(p, r), ActRow(p, a), p.cols);
        ASSERT_NEAR(out[a * p.rows + r], ref, 1e-6 * Magnitude(p, r, a))
            << TypeName(type) << " act " << a << " row " << r;
      }
    }
  }
}

// Whatever the batch size (1 = decode, tiles of 1-4, more than a 64-row panel) and row
// range, each output has the same bits as on the scalar target.
TEST_P(InterleavedKernelTest, BitIdenticalToScalarForEveryBatchAndRowRange) {
  for (GgmlType type : kTypes) {
    const Problem p = MakeProblemWithCols(type, 64, 70, InterleavedCols(type), 11);
    const std::vector<uint8_t> packed = Interleave(p);
    hwy::SetSupportedTargetsForTest(HWY_SCALAR);
    ASSERT_FALSE(InterleavedKernelsFast());
    const std::vector<float> scalar = Multiply(p, packed, p.n_act, 0, p.rows);
    hwy::SetSupportedTargetsForTest(GetParam());
    for (int64_t n_act : {1, 2, 3, 4, 5, 9, 16, 17, 31, 70}) {
      const int64_t begin = n_act % 2 ? 16 : 0, end = n_act % 3 ? p.rows : 48;
      const std::vector<float> out = Multiply(p, packed, n_act, begin, end);
      for (int64_t a = 0; a < n_act; ++a) {
        for (int64_t r = 0; r < p.rows; ++r) {
          const float want = r >= begin && r < end ? scalar[a * p.rows + r] : -1.0f;
          ASSERT_EQ(out[a * p.rows + r], want) << TypeName(type) << " n_act " << n_act << " act " << a
                                               << " row " << r;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, InterleavedKernelTest, ::testing::ValuesIn(KernelTargets()),
                         [](const ::testing::TestParamInfo<int64_t>& info) {
                           return std::string(hwy::TargetName(info.param));
                         });

}  // namespace
}  // namespace triplane::engine::cpu
