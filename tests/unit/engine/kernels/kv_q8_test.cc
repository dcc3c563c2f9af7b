// The 8-bit KV cache kernels on every SIMD target this CPU supports: quantization byte
// for byte against a scalar reference, scores bit for bit against exact integer dot
// products, value sums against double precision, and the same bits for a token whatever
// else is in the batch.

#include "engine/kernels/cpu/kv_q8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/cpu/matmul.h"
#include "hwy/targets.h"
#include "testing/kernel_problem.h"

namespace triplane::engine::cpu {
namespace {

using kernel_test::Gaussian;

// The documented quantization, written out: scale max |x| / 127, x * (127 / max |x|)
// rounded to nearest even.
float ReferenceQ8(const std::vector<float>& x, int64_t offset, int64_t n, std::vector<int>& q) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[offset + i]));
  q.assign(static_cast<size_t>(n), 0);
  if (amax == 0) return 0;
  const float id = 127.0f / amax;
  for (int64_t i = 0; i < n; ++i) q[i] = static_cast<int>(std::nearbyint(x[offset + i] * id));
  return amax / 127.0f;
}

class KvQ8Test : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { hwy::SetSupportedTargetsForTest(GetParam()); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

TEST_P(KvQ8Test, KeysAndValuesQuantizeLikeTheReferenceIntoTheirLayouts) {
  std::mt19937 rng(3);
  for (int64_t dim : {4, 20, 64, 128}) {
    std::vector<uint8_t> block(static_cast<size_t>(dim * kKvBlockQ8), 0);
    std::vector<int8_t> row(static_cast<size_t>(dim));
    for (int64_t slot = 0; slot < kKvBlockQ8; ++slot) {
      std::vector<float> x = Gaussian(dim, rng);
      x[static_cast<size_t>(slot % dim)] *= 5;  // an outlier sets the scale
      std::vector<int> want;
      const float want_scale = ReferenceQ8(x, 0, dim, want);
      ASSERT_EQ(StoreKeyQ8(x.data(), dim, slot, block.data()), want_scale);
      ASSERT_EQ(StoreValueQ8(x.data(), dim, row.data()), want_scale);
      for (int64_t e = 0; e < dim; ++e) {
        ASSERT_EQ(block[(e / 4) * 4 * kKvBlockQ8 + slot * 4 + e % 4] - 128, want[e]) << "dim " << dim << " e " << e;
        ASSERT_EQ(row[e], want[e]) << "dim " << dim << " e " << e;
        ASSERT_LE(std::fabs(x[e] - row[e] * want_scale), 0.5001f * want_scale);
      }
    }
  }
  // A zero vector and one with a NaN are stored as zeros with scale 0, never garbage.
  std::vector<float> zero(64, 0.0f), nan = Gaussian(64, rng);
  nan[37] = std::numeric_limits<float>::quiet_NaN();
  std::vector<int8_t> row(64, 1);
  EXPECT_EQ(StoreValueQ8(zero.data(), 64, row.data()), 0.0f);
  EXPECT_EQ(row, std::vector<int8_t>(64, 0));
  std::fill(row.begin(), row.end(), 1);
  EXPECT_EQ(StoreValueQ8(nan.data(), 64, row.data()), 0.0f);
  EXPECT_EQ(row, std::vector<int8_t>(64, 0));
}

TEST_P(KvQ8Test, ScoresAreExactIntegerDotsScaledAndDoNotDependOnTheBatch) {
  std::mt19937 rng(7);
  constexpr int64_t kTokens = 6;
  for (int64_t dim : {20, 64, 128}) {
    for (int64_t n_blocks : {1, 3, 4, 9}) {
      const int64_t positions = n_blocks * kKvBlockQ8;
      const std::vector<float> keys = Gaussian(positions * dim, rng);
      std::vector<uint8_t> storage(static_cast<size_t>(n_blocks * dim * kKvBlockQ8));
      std::vector<float> scales(static_cast<size_t>(positions));
      std::vector<const uint8_t*> blocks;
      std::vector<const float*> block_scales;
      for (int64_t b = 0; b < n_blocks; ++b) {
        blocks.push_back(&storage[b * dim * kKvBlockQ8]);
        block_scales.push_back(&scales[b * kKvBlockQ8]);
        for (int64_t s = 0; s < kKvBlockQ8; ++s) {
          scales[b * kKvBlockQ8 + s] =
              StoreKeyQ8(&keys[(b * kKvBlockQ8 + s) * dim], dim, s, &storage[b * dim * kKvBlockQ8]);
        }
      }
      const std::vector<float> q = Gaussian(kTokens * dim, rng);
      std::vector<float> scores(kTokens * positions), one(positions);
      ScoreBlocksQ8(q.data(), dim, kTokens, blocks.data(), block_scales.data(), n_blocks, dim, scores.data(),
                    positions);
      for (int64_t t = 0; t < kTokens; ++t) {
        ScoreBlocksQ8(q.data() + t * dim, dim, 1, blocks.data(), block_scales.data(), n_blocks, dim, one.data(),
                      positions);
        std::vector<int> qq, kq;
        const float dq = ReferenceQ8(q, t * dim, dim, qq);
        for (int64_t j = 0; j < positions; ++j) {
          const float dk = ReferenceQ8(keys, j * dim, dim, kq);
          int32_t isum = 0;
          double exact = 0, mag = 0;
          for (int64_t e = 0; e < dim; ++e) {
            isum += qq[e] * kq[e];
            exact += double{q[t * dim + e]} * keys[j * dim + e];
            mag += std::fabs(double{q[t * dim + e]} * keys[j * dim + e]);
          }
          const float want = static_cast<float>(isum) * (dq * dk);
          ASSERT_EQ(scores[t * positions + j], want) << "dim " << dim << " token " << t << " position " << j;
          ASSERT_EQ(one[j], want) << "dim " << dim << " token " << t << " position " << j;
          ASSERT_NEAR(want, exact, 0.03 * mag) << "dim " << dim << " token " << t << " position " << j;
        }
      }
    }
  }
}

TEST_P(KvQ8Test, ValueSumsMatchDoublePrecisionAndDoNotDependOnTheBatch) {
  std::mt19937 rng(13);
  constexpr int64_t kTokens = 6, kBlocks = 5, kPositions = kBlocks * kKvBlockQ8;
  for (int64_t dim : {20, 64, 128}) {
    std::vector<int8_t> storage(static_cast<size_t>(kPositions * dim));
    std::vector<float> scales(kPositions);
    const std::vector<float> values = Gaussian(kPositions * dim, rng);
    for (int64_t j = 0; j < kPositions; ++j) scales[j] = StoreValueQ8(&values[j * dim], dim, &storage[j * dim]);
    std::vector<const int8_t*> blocks;
    std::vector<const float*> block_scales;
    for (int64_t b = 0; b < kBlocks; ++b) {
      blocks.push_back(&storage[b * kKvBlockQ8 * dim]);
      block_scales.push_back(&scales[b * kKvBlockQ8]);
    }
    const std::vector<float> p = Gaussian(kTokens * kPositions, rng);
    const int64_t len[kTokens] = {1, 17, 80, 33, 64, 5};
    std::vector<float> acc(kTokens * dim, 0.0f), single(dim);
    AccumulateRowsQ8(p.data(), kPositions, len, kTokens, blocks.data(), block_scales.data(), dim, acc.data(), dim);
    for (int64_t t = 0; t < kTokens; ++t) {
      std::fill(single.begin(), single.end(), 0.0f);
      AccumulateRowsQ8(p.data() + t * kPositions, kPositions, &len[t], 1, blocks.data(), block_scales.data(), dim,
                       single.data(), dim);
      for (int64_t d = 0; d < dim; ++d) {
        double want = 0, mag = 0;
        for (int64_t j = 0; j < len[t]; ++j) {
          const double v = double{scales[j]} * storage[j * dim + d];
          want += p[t * kPositions + j] * v;
          mag += std::fabs(p[t * kPositions + j] * v);
        }
        ASSERT_NEAR(acc[t * dim + d], want, 1e-6 * mag + 1e-7) << "dim " << dim << " token " << t << " d " << d;
        ASSERT_EQ(acc[t * dim + d], single[d]) << "dim " << dim << " token " << t << " d " << d;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, KvQ8Test, ::testing::ValuesIn(KernelTargets()),
                         [](const ::testing::TestParamInfo<int64_t>& info) {
                           return std::string(hwy::TargetName(info.param));
                         });

}  // namespace
}  // namespace triplane::engine::cpu
