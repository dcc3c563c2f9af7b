// The sampler's filters against a reference that sorts the whole vocabulary: the same
// kept set for top-k, top-p and min-p over peaked, flat and tied logits, and draws whose
// frequencies match the tempered distribution over that set.

#include "engine/sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <vector>

namespace triplane::engine {
namespace {

// The kept set by definition: candidates sorted by logit (ties by id), the top_k of them
// when set; softmax at temperature 1 over the candidates; the shortest prefix holding
// top_p; without those below min_p times the largest probability. `extra` more of the
// sorted candidates are added (a cut that float and double sums place one token apart).
std::set<int32_t> ReferenceKept(const std::vector<float>& logits, const SamplingParams& p, int extra = 0) {
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < order.size()) order.resize(static_cast<size_t>(p.top_k));
  const double top = logits[order[0]];
  double sum = 0;
  for (int32_t t : order) sum += std::exp(logits[t] - top);
  std::set<int32_t> kept;
  double cumulative = 0;
  size_t i = 0;
  for (; i < order.size(); ++i) {
    const double prob = std::exp(logits[order[i]] - top) / sum;
    if (!kept.empty() && prob < p.min_p / sum) break;
    kept.insert(order[i]);
    cumulative += prob;
    if (p.top_p < 1.0f && cumulative >= p.top_p) {
      ++i;
      break;
    }
  }
  for (int e = 0; e < extra && i < order.size(); ++e) kept.insert(order[i++]);
  return kept;
}

std::set<int32_t> Drawn(const std::vector<float>& logits, SamplingParams p, int draws) {
  Sampler sampler(p, static_cast<int64_t>(logits.size()));
  std::set<int32_t> seen;
  for (int i = 0; i < draws; ++i) {
    std::vector<float> copy = logits;
    seen.insert(sampler.Sample(copy, {}));
  }
  return seen;
}

TEST(SamplerFilterTest, KeepsWhatSortingTheVocabularyWouldKeep) {
  std::mt19937 rng(17);
  std::normal_distribution<float> normal;
  std::vector<std::vector<float>> cases;
  for (float spread : {0.3f, 1.0f, 3.0f, 8.0f}) {  // flat to peaked
    std::vector<float> l(2000);
    for (float& x : l) x = spread * normal(rng);
    cases.push_back(l);
  }
  std::vector<float> outliers(2000, -3.0f);  // a few far above a crowd of ties
  outliers[7] = 9.0f, outliers[1500] = 8.5f, outliers[123] = 8.5f;
  cases.push_back(outliers);
  for (size_t c = 0; c < cases.size(); ++c) {
    for (const SamplingParams& p : std::vector<SamplingParams>{
             {.top_p = 0.5f}, {.top_p = 0.9f}, {.top_p = 0.99f}, {.min_p = 0.05f}, {.top_p = 0.9f, .min_p = 0.2f},
             {.top_k = 50, .top_p = 0.8f}, {.top_k = 7}}) {
      SCOPED_TRACE(::testing::Message() << "case " << c << " top_k " << p.top_k << " top_p " << p.top_p
                                      << " min_p " << p.min_p);
      const std::set<int32_t> want = ReferenceKept(cases[c], p), roomy = ReferenceKept(cases[c], p, 1);
      // Temperature 3 flattens the draw so that most of a kept set shows up.
      SamplingParams hot = p;
      hot.temperature = 3.0f;
      hot.seed = 5;
      const std::set<int32_t> seen = Drawn(cases[c], hot, 1500);
      for (int32_t t : seen) ASSERT_TRUE(roomy.contains(t)) << "drew token " << t << " outside the kept set";
      if (want.size() <= 20) {
        EXPECT_EQ(seen, want);
      }
    }
  }
}

TEST(SamplerFilterTest, TiesAreKeptInIdOrder) {
  const std::vector<float> flat(1000, 0.5f);
  const std::set<int32_t> seen = Drawn(flat, {.temperature = 1.0f, .top_p = 0.25f, .seed = 1}, 5000);
  EXPECT_LE(*seen.rbegin(), 250);  // the first 250 ids hold a quarter (one more for rounding)
  EXPECT_GE(*seen.rbegin(), 240);
  EXPECT_EQ(*seen.begin(), 0);
}

// Frequencies of 40,000 draws against the tempered, renormalised probabilities of the
// kept set, within 5 standard deviations; with no filter, over the whole vocabulary.
TEST(SamplerFilterTest, DrawsFollowTheTemperedDistributionOfTheKeptSet) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.5f, -1.0f, 0.0f, 2.9f, -4.0f, 1.5f};
  for (const SamplingParams& p : std::vector<SamplingParams>{
           {.temperature = 0.7f, .seed = 9}, {.temperature = 0.7f, .top_p = 0.8f, .seed = 9},
           {.temperature = 1.5f, .min_p = 0.1f, .seed = 9}, {.temperature = 1.0f, .top_k = 3, .seed = 9}}) {
    SCOPED_TRACE(::testing::Message() << "temperature " << p.temperature << " top_k " << p.top_k << " top_p "
                                    << p.top_p << " min_p " << p.min_p);
    const std::set<int32_t> kept = ReferenceKept(logits, p);
    std::vector<double> want(logits.size(), 0.0);
    double sum = 0;
    for (int32_t t : kept) sum += want[t] = std::exp(logits[t] / p.temperature);
    for (double& w : want) w /= sum;
    Sampler sampler(p, static_cast<int64_t>(logits.size()));
    constexpr int kDraws = 40000;
    std::vector<int> count(logits.size(), 0);
    for (int i = 0; i < kDraws; ++i) {
      std::vector<float> copy = logits;
      ++count[static_cast<size_t>(sampler.Sample(copy, {}))];
    }
    for (size_t t = 0; t < logits.size(); ++t) {
      const double sigma = std::sqrt(kDraws * want[t] * (1 - want[t])) + 1e-9;
      EXPECT_NEAR(count[t], kDraws * want[t], 5 * sigma + 1) << "token " << t;
    }
  }
}

}  // namespace
}  // namespace triplane::engine
