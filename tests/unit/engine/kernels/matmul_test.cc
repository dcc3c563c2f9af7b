// Every SIMD kernel against the scalar reference, on every target compiled in and
// supported by this CPU (hwy::SetSupportedTargetsForTest forces each in turn).

#include "engine/kernels/cpu/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/cpu/fp16.h"
#include "engine/kernels/cpu/quant.h"
#include "engine/kernels/cpu/quant_internal.h"
#include "hwy/targets.h"
#include "testing/kernel_problem.h"

namespace triplane::engine::cpu {
namespace {

using kernel_test::ActRow;
using kernel_test::Exact;
using kernel_test::Gaussian;
using kernel_test::Magnitude;
using kernel_test::MakeProblemWithCols;
using kernel_test::Problem;
using kernel_test::WeightRow;

constexpr GgmlType kWeightTypes[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16,
                                     GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K,
                                     GgmlType::kQ6_K};

std::string Name(GgmlType type) {
  return std::string(GetGgmlTypeTraits(static_cast<uint32_t>(type))->name);
}

// Columns per type: several blocks with an odd count, and a vector tail for float types.
int64_t Cols(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_K:
    case GgmlType::kQ6_K:
      return 5 * 256;
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
      return 23 * 32;
    default:
      return 333;
  }
}

// |SIMD - reference| <= tolerance * sum_i |w_i * a_i| (dequantized): integer block sums are
// exact in both, so only float accumulation order differs (float types: float vs double).
double Tolerance(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
      return 2e-6;
    default:
      return 1e-6;
  }
}

Problem MakeProblem(GgmlType type, int64_t rows, int64_t n_act, uint32_t seed) {
  return MakeProblemWithCols(type, rows, n_act, Cols(type), seed);
}

TEST(ReferenceDotTest, EqualsDotOfDequantizedRows) {
  for (GgmlType type : kWeightTypes) {
    const Problem p = MakeProblem(type, 3, 2, 5);
    for (int64_t r = 0; r < p.rows; ++r) {
      for (int64_t a = 0; a < p.n_act; ++a) {
        const double ref = VecDotRef(type, WeightRow(p, r), ActRow(p, a), p.cols);
        EXPECT_NEAR(ref, Exact(p, r, a), 1e-5 * Magnitude(p, r, a)) << Name(type);
      }
    }
  }
}

TEST(KernelTargetsTest, IncludeEveryX86TargetThisCpuSupports) {
  const std::vector<int64_t> targets = KernelTargets();
  ASSERT_FALSE(targets.empty());
  const int64_t supported = hwy::SupportedTargets();
  for (int64_t t : {int64_t{HWY_AVX2}, int64_t{HWY_AVX3}, int64_t{HWY_AVX3_DL}}) {
    if (supported & t) {
      EXPECT_NE(std::find(targets.begin(), targets.end(), t), targets.end()) << hwy::TargetName(t);
    }
  }
}

class KernelTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override {
    hwy::SetSupportedTargetsForTest(GetParam());
    ASSERT_EQ(ActiveKernelTarget(), hwy::TargetName(GetParam()));
  }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

TEST_P(KernelTest, VecDotMatchesReference) {
  for (GgmlType type : kWeightTypes) {
    const Problem p = MakeProblem(type, 5, 3, 17);
    for (int64_t r = 0; r < p.rows; ++r) {
      for (int64_t a = 0; a < p.n_act; ++a) {
        const float ref = VecDotRef(type, WeightRow(p, r), ActRow(p, a), p.cols);
        const float got = VecDot(type, WeightRow(p, r), ActRow(p, a), p.cols);
        ASSERT_NEAR(got, ref, Tolerance(type) * Magnitude(p, r, a)) << Name(type) << " row " << r;
      }
    }
  }
}

TEST_P(KernelTest, VecDotHandlesSingleBlockAndTinyRows) {
  for (GgmlType type : kWeightTypes) {
    const int64_t block = GetGgmlTypeTraits(static_cast<uint32_t>(type))->block_elements;
    for (int64_t cols : {block, 2 * block, block == 1 ? int64_t{7} : 3 * block}) {
      std::mt19937 rng(static_cast<uint32_t>(cols));
      const auto w = Gaussian(cols, rng);
      const auto x = Gaussian(cols, rng);
      std::vector<uint8_t> wq(static_cast<size_t>(RowBytes(type, cols)));
      std::vector<uint8_t> xq(static_cast<size_t>(RowBytes(ActivationType(type), cols)));
      ASSERT_TRUE(QuantizeRow(type, w.data(), wq.data(), cols).ok());
      QuantizeActivations(type, x.data(), cols, xq.data());
      const float ref = VecDotRef(type, wq.data(), xq.data(), cols);
      EXPECT_NEAR(VecDot(type, wq.data(), xq.data(), cols), ref, 1e-5f * (std::fabs(ref) + cols))
          << Name(type) << " cols " << cols;
    }
  }
}

TEST_P(KernelTest, MatVecWritesExactlyItsRowRange) {
  const float kUntouched = std::numeric_limits<float>::quiet_NaN();
  for (GgmlType type : kWeightTypes) {
    const Problem p = MakeProblem(type, 37, 1, 23);
    for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 37}, {5, 30}, {36, 37}, {8, 8}}) {
      std::vector<float> out(static_cast<size_t>(p.rows), kUntouched);
      MatVec(type, p.weights.data(), p.rows, p.cols, ActRow(p, 0), out.data(), begin, end);
      for (int64_t r = 0; r < p.rows; ++r) {
        if (r < begin || r >= end) {
          EXPECT_TRUE(std::isnan(out[r])) << Name(type) << " wrote row " << r;
          continue;
        }
        const float ref = VecDotRef(type, WeightRow(p, r), ActRow(p, 0), p.cols);
        ASSERT_NEAR(out[r], ref, Tolerance(type) * Magnitude(p, r, 0))
            << Name(type) << " row " << r;
      }
    }
  }
}

TEST_P(KernelTest, MatMulMatchesReferenceForEveryActivationRow) {
  const float kUntouched = std::numeric_limits<float>::quiet_NaN();
  for (GgmlType type : kWeightTypes) {
    const Problem p = MakeProblem(type, 19, 5, 29);
    const int64_t out_stride = p.rows + 3;
    std::vector<float> out(static_cast<size_t>(p.n_act * out_stride), kUntouched);
    MatMul(type, p.weights.data(), p.rows, p.cols, p.activations.data(), p.n_act, p.act_stride,
           out.data(), out_stride, 2, 17);
    for (int64_t a = 0; a < p.n_act; ++a) {
      for (int64_t r = 0; r < out_stride; ++r) {
        const float got = out[a * out_stride + r];
        if (r < 2 || r >= 17) {
          EXPECT_TRUE(std::isnan(got)) << Name(type) << " wrote " << a << "," << r;
          continue;
        }
        const float ref = VecDotRef(type, WeightRow(p, r), ActRow(p, a), p.cols);
        ASSERT_NEAR(got, ref, Tolerance(type) * Magnitude(p, r, a))
            << Name(type) << " act " << a << " row " << r;
      }
    }
  }
}

// The register-tiled kernels work on 4 x 4 tiles of (weight row, activation row) pairs:
// every count of activation rows around and across tile and panel edges, row ranges that
// start and end inside tiles, and a single block per row.
TEST_P(KernelTest, MatMulMatchesReferenceForEveryBatchSizeAndRowRange) {
  const float kUntouched = std::numeric_limits<float>::quiet_NaN();
  for (GgmlType type : kWeightTypes) {
    for (int64_t n_act : {1, 2, 3, 4, 5, 7, 8, 13, 64}) {
      const Problem p = MakeProblem(type, 23, n_act, static_cast<uint32_t>(31 + n_act));
      for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 23}, {3, 22}, {1, 6}, {7, 8}}) {
        const int64_t out_stride = p.rows + 1;
        std::vector<float> out(static_cast<size_t>(n_act * out_stride), kUntouched);
        MatMul(type, p.weights.data(), p.rows, p.cols, p.activations.data(), n_act, p.act_stride,
               out.data(), out_stride, begin, end);
        for (int64_t a = 0; a < n_act; ++a) {
          for (int64_t r = 0; r < out_stride; ++r) {
            const float got = out[a * out_stride + r];
            if (r < begin || r >= end) {
              ASSERT_TRUE(std::isnan(got)) << Name(type) << " wrote " << a << "," << r;
              continue;
            }
            const float ref = VecDotRef(type, WeightRow(p, r), ActRow(p, a), p.cols);
            ASSERT_NEAR(got, ref, Tolerance(type) * Magnitude(p, r, a))
                << Name(type) << " n_act " << n_act << " act " << a << " row " << r;
          }
        }
      }
    }
  }
}

// Batch invariance: each output of MatMul is VecDot of its pair, bit for bit, whatever
// the batch size or row range (prefill and token-by-token decode agree exactly).
TEST_P(KernelTest, MatMulRowsAreBitIdenticalToVecDot) {
  for (GgmlType type : kWeightTypes) {
    for (int64_t n_act : {3, 5, 13}) {
      // Float types: 333 and 1016 columns cover every part of DotWith's loops.
      for (int64_t cols : {Cols(type), 3 * Cols(type) + (Cols(type) == 333 ? 17 : 0)}) {
        const Problem p = MakeProblemWithCols(type, 9, n_act, cols, static_cast<uint32_t>(cols));
        std::vector<float> out(static_cast<size_t>(n_act * p.rows));
        MatMul(type, p.weights.data(), p.rows, p.cols, p.activations.data(), n_act, p.act_stride,
               out.data(), p.rows, 1, p.rows);
        for (int64_t a = 0; a < n_act; ++a) {
          for (int64_t r = 1; r < p.rows; ++r) {
            ASSERT_EQ(out[a * p.rows + r], VecDot(type, WeightRow(p, r), ActRow(p, a), p.cols))
                << Name(type) << " cols " << p.cols << " n_act " << n_act << " act " << a << " row "
                << r;
          }
        }
      }
    }
  }
}

TEST_P(KernelTest, MatMulHandlesSingleBlockRows) {
  for (GgmlType type : kWeightTypes) {
    const int64_t block = GetGgmlTypeTraits(static_cast<uint32_t>(type))->block_elements;
    for (int64_t cols : {block, block == 1 ? int64_t{5} : 3 * block}) {
      constexpr int64_t kRows = 6, kActs = 6;
      std::mt19937 rng(static_cast<uint32_t>(cols + 1));
      const int64_t row_bytes = RowBytes(type, cols);
      const int64_t act_bytes = RowBytes(ActivationType(type), cols);
      std::vector<uint8_t> w(static_cast<size_t>(kRows * row_bytes));
      std::vector<uint8_t> x(static_cast<size_t>(kActs * act_bytes));
      for (int64_t r = 0; r < kRows; ++r) {
        ASSERT_TRUE(QuantizeRow(type, Gaussian(cols, rng).data(), &w[r * row_bytes], cols).ok());
      }
      for (int64_t a = 0; a < kActs; ++a) {
        QuantizeActivations(type, Gaussian(cols, rng).data(), cols, &x[a * act_bytes]);
      }
      std::vector<float> out(kRows * kActs);
      MatMul(type, w.data(), kRows, cols, x.data(), kActs, act_bytes, out.data(), kRows, 0, kRows);
      for (int64_t a = 0; a < kActs; ++a) {
        for (int64_t r = 0; r < kRows; ++r) {
          const float ref = VecDotRef(type, &w[r * row_bytes], &x[a * act_bytes], cols);
          EXPECT_NEAR(out[a * kRows + r], ref, 1e-5f * (std::fabs(ref) + cols))
              << Name(type) << " cols " << cols << " act " << a << " row " << r;
        }
      }
    }
  }
}

TEST_P(KernelTest, ConvertToF16RoundsLikeTheScalarConversion) {
  std::mt19937 rng(3);
  std::vector<float> x = Gaussian(1000, rng);
  for (float& v : x) v *= 1000.0f;
  const float specials[] = {0.0f, -0.0f, 65504.0f, 65520.0f, 1e-8f, -6e-5f, 1.0009765625f + 0x1p-11f,
                            std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()};
  x.insert(x.begin() + 7, std::begin(specials), std::end(specials));
  std::vector<uint16_t> out(x.size());
  ConvertToF16(x.data(), static_cast<int64_t>(x.size()), out.data());
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i])) {
      EXPECT_TRUE(std::isnan(Fp16ToFp32(out[i])));
    } else {
      ASSERT_EQ(out[i], Fp32ToFp16(x[i])) << "x = " << x[i];
    }
  }
}

TEST_P(KernelTest, ActivationQuantizationMatchesScalarQuantizersByteForByte) {
  std::mt19937 rng(5);
  std::vector<float> x = Gaussian(4 * 256, rng);
  std::fill(x.begin() + 256, x.begin() + 512, 0.0f);  // an all-zero block
  x[600] = -9.0f;                                      // ties of magnitude: the first wins
  x[610] = 9.0f;
  x[700] = 2.5f * 127 / 9;  // exactly halfway between two quants after scaling
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_K}) {
    const GgmlType act = ActivationType(type);
    std::vector<uint8_t> got(static_cast<size_t>(RowBytes(act, 1024))), want(got.size());
    QuantizeActivations(type, x.data(), 1024, got.data());
    if (type == GgmlType::kQ4_K) {
      internal::QuantizeQ8_K(x.data(), reinterpret_cast<BlockQ8_K*>(want.data()), 1024);
    } else {
      internal::QuantizeActivationsQ8_0(x.data(), reinterpret_cast<BlockQ8_0*>(want.data()), 1024);
    }
    EXPECT_EQ(got, want) << Name(type);
  }
}

// Attention kernels: against double-precision sums, and the same bits for a token whatever
// the other tokens processed with it.
TEST_P(KernelTest, AttentionKernelsMatchReferenceAndDoNotDependOnTheBatch) {
  std::mt19937 rng(9);
  constexpr int64_t kDim = 64, kBlocks = 5, kTokens = 6, kPositions = kBlocks * 16;
  std::vector<float> q = Gaussian(kTokens * kDim, rng);
  RoundToF16(q.data(), static_cast<int64_t>(q.size()));
  std::vector<uint16_t> keys(kBlocks * kDim * 16), values(kPositions * kDim);
  for (uint16_t& k : keys) k = Fp32ToFp16(std::normal_distribution<float>()(rng));
  for (uint16_t& v : values) v = Fp32ToFp16(std::normal_distribution<float>()(rng));
  std::vector<const uint16_t*> blocks, rows;
  for (int64_t b = 0; b < kBlocks; ++b) blocks.push_back(&keys[b * kDim * 16]);
  for (int64_t j = 0; j < kPositions; ++j) rows.push_back(&values[j * kDim]);

  std::vector<float> scores(kTokens * kPositions), one(kPositions);
  ScoreBlocksF16(q.data(), kDim, kTokens, blocks.data(), kBlocks, 16, kDim, scores.data(), kPositions);
  for (int64_t t = 0; t < kTokens; ++t) {
    ScoreBlocksF16(q.data() + t * kDim, kDim, 1, blocks.data(), kBlocks, 16, kDim, one.data(), kPositions);
    for (int64_t j = 0; j < kPositions; ++j) {
      double want = 0, mag = 0;
      for (int64_t e = 0; e < kDim; ++e) {
        const double k = Fp16ToFp32(keys[(j / 16) * kDim * 16 + e * 16 + j % 16]);
        want += q[t * kDim + e] * k;
        mag += std::fabs(q[t * kDim + e] * k);
      }
      ASSERT_NEAR(scores[t * kPositions + j], want, 1e-6 * mag) << "token " << t << " position " << j;
      ASSERT_EQ(scores[t * kPositions + j], one[j]) << "token " << t << " position " << j;
    }
  }

  std::vector<float> p = Gaussian(kTokens * kPositions, rng);
  const int64_t len[kTokens] = {1, 17, 80, 33, 64, 5};
  std::vector<float> acc(kTokens * kDim, 0.0f), single(kDim);
  AccumulateRowsF16(p.data(), kPositions, len, kTokens, rows.data(), kDim, acc.data(), kDim);
  for (int64_t t = 0; t < kTokens; ++t) {
    std::fill(single.begin(), single.end(), 0.0f);
    AccumulateRowsF16(p.data() + t * kPositions, kPositions, &len[t], 1, rows.data(), kDim, single.data(), kDim);
    for (int64_t d = 0; d < kDim; ++d) {
      double want = 0, mag = 0;
      for (int64_t j = 0; j < len[t]; ++j) {
        const double v = Fp16ToFp32(values[j * kDim + d]);
        want += p[t * kPositions + j] * v;
        mag += std::fabs(p[t * kPositions + j] * v);
      }
      ASSERT_NEAR(acc[t * kDim + d], want, 1e-6 * mag + 1e-7) << "token " << t << " dim " << d;
      ASSERT_EQ(acc[t * kDim + d], single[d]) << "token " << t << " dim " << d;
    }
  }
}

// Softmax of attention scores: against exp and sums in double (then the f16 rounding), for
// rows that end anywhere within a vector; values past n untouched.
TEST_P(KernelTest, SoftmaxF16MatchesReferenceForEveryLength) {
  std::mt19937 rng(11);
  const float scale = 0.125f;
  for (int64_t n = 1; n <= 70; ++n) {
    std::vector<float> x = Gaussian(n + 8, rng);
    for (float& v : x) v *= 20.0f;  // large spreads: most weights underflow towards 0
    const std::vector<float> original = x;
    SoftmaxF16(x.data(), n, scale);
    double top = -HUGE_VAL, sum = 0;
    for (int64_t j = 0; j < n; ++j) top = std::max(top, static_cast<double>(original[j]) * scale);
    for (int64_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(original[j]) * scale - top);
    double total = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double want = std::exp(static_cast<double>(original[j]) * scale - top) / sum;
      ASSERT_NEAR(x[j], want, 1e-3 * want + 1e-7) << "n " << n << " j " << j;
      ASSERT_EQ(x[j], Fp16ToFp32(Fp32ToFp16(x[j]))) << "n " << n << " j " << j << " is not an f16 value";
      total += x[j];
    }
    EXPECT_NEAR(total, 1.0, 2e-3) << "n " << n;
    for (int64_t j = n; j < n + 8; ++j) ASSERT_EQ(x[j], original[j]) << "n " << n << " wrote past the row";
  }
}

// The sampler's exp: each value near std::exp, and the sum keeps small terms next to
// large ones (a vocabulary with a few dominant logits and a long tail).
TEST_P(KernelTest, ExpScaledMatchesExpAndSumsTheTail) {
  for (int64_t n : {1, 15, 16, 17, 4000}) {
    std::vector<float> x(static_cast<size_t>(n), -3.0f), out(static_cast<size_t>(n));
    x[0] = 9.0f;
    if (n > 20) x[17] = 8.5f;
    double want = 0;
    for (float v : x) want += std::exp(static_cast<double>(v) - 9.0);
    const double sum = ExpScaled(x.data(), n, 9.0f, 1.0f, out.data());
    for (int64_t i = 0; i < n; ++i) {
      const double e = std::exp(static_cast<double>(x[i]) - 9.0);
      ASSERT_NEAR(out[i], e, 4e-7 * e) << "n " << n << " i " << i;
    }
    EXPECT_NEAR(sum, want, 1e-6 * want) << "n " << n;
  }
}

// The greedy pick: std::max_element's answer (the first of equal maxima) for every
// length around the vector width and a vocabulary, with ties, infinities and one NaN.
TEST_P(KernelTest, ArgMaxIsTheFirstLargest) {
  std::mt19937 rng(12);
  for (int64_t n : {1, 2, 7, 15, 16, 17, 31, 32, 33, 100, 32000}) {
    std::vector<float> x = Gaussian(n, rng);
    EXPECT_EQ(ArgMax(x.data(), n), std::max_element(x.begin(), x.end()) - x.begin()) << "n " << n;
    const int64_t late = n - 1, early = n / 3;  // equal maxima: the earlier one
    x[static_cast<size_t>(late)] = 50.0f;
    x[static_cast<size_t>(early)] = 50.0f;
    EXPECT_EQ(ArgMax(x.data(), n), early) << "n " << n;
    std::vector<float> same(static_cast<size_t>(n), -1.0f);
    EXPECT_EQ(ArgMax(same.data(), n), 0) << "n " << n;
    std::vector<float> low(static_cast<size_t>(n), -HUGE_VALF);
    low[static_cast<size_t>(late)] = -1e30f;
    EXPECT_EQ(ArgMax(low.data(), n), late) << "n " << n;
    x[static_cast<size_t>(n / 2)] = HUGE_VALF;
    EXPECT_EQ(ArgMax(x.data(), n), n / 2) << "n " << n;
    x[0] = std::nanf("");
    EXPECT_EQ(ArgMax(x.data(), n), std::max_element(x.begin(), x.end()) - x.begin()) << "n " << n;
  }
  EXPECT_EQ(ArgMax(nullptr, 0), -1);
}

INSTANTIATE_TEST_SUITE_P(AllTargets, KernelTest, ::testing::ValuesIn(KernelTargets()),
                         [](const ::testing::TestParamInfo<int64_t>& info) {
                           return std::string(hwy::TargetName(info.param));
                         });

}  // namespace
}  // namespace triplane::engine::cpu
