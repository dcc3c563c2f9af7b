#include "control/monitor/histogram_buckets.h"

#include <cmath>
#include <limits>

#include "common/metrics.h"
#include "gtest/gtest.h"

namespace triplane::control {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

HistogramBuckets Buckets(std::vector<double> bounds, std::vector<double> cumulative) {
  return {.upper_bounds = std::move(bounds), .cumulative = std::move(cumulative)};
}

TEST(HistogramQuantileTest, InterpolatesLinearlyWithinTheBucketLikePrometheus) {
  // 10 observations: 2 in (0, 0.1], 6 in (0.1, 0.5], 2 in (0.5, 1].
  const HistogramBuckets b = Buckets({0.1, 0.5, 1, kInf}, {2, 8, 10, 10});
  // rank 5 is the 3rd of 6 in (0.1, 0.5]: 0.1 + 0.4 * 3/6.
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.5, b), 0.3);
  // rank 1 is half-way into the first bucket, which starts at 0.
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.1, b), 0.05);
  // rank 9.9 is 1.9 of 2 into (0.5, 1].
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.99, b), 0.5 + 0.5 * 1.9 / 2);
  EXPECT_DOUBLE_EQ(HistogramQuantile(1, b), 1);
}

TEST(HistogramQuantileTest, AnswersTheHighestFiniteBoundForTheInfBucket) {
  const HistogramBuckets b = Buckets({0.1, 0.5, kInf}, {0, 1, 10});
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.5, b), 0.5);
}

TEST(HistogramQuantileTest, IsUnknownWithoutObservationsOrInfBucket) {
  EXPECT_TRUE(std::isnan(HistogramQuantile(0.5, Buckets({0.1, kInf}, {0, 0}))));
  EXPECT_TRUE(std::isnan(HistogramQuantile(0.5, Buckets({0.1, 1}, {1, 2}))));
  EXPECT_TRUE(std::isnan(HistogramQuantile(0.5, Buckets({kInf}, {3}))));
  EXPECT_TRUE(std::isnan(HistogramQuantile(0.5, {})));
  EXPECT_EQ(HistogramQuantile(-1, Buckets({0.1, kInf}, {1, 1})), -kInf);
  EXPECT_EQ(HistogramQuantile(2, Buckets({0.1, kInf}, {1, 1})), kInf);
}

TEST(HistogramQuantileTest, ToleratesCountsOutOfOrder) {
  // A scrape read the buckets' atomics while observations landed: 0.5 shows fewer than
  // 0.1. As in Prometheus, a bucket never counts less than the one below.
  const HistogramBuckets b = Buckets({0.1, 0.5, 1, kInf}, {4, 3, 8, 8});
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.25, b), 0.05);
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.75, b), 0.5 + 0.5 * 2 / 4);
}

TEST(BucketDeltaTest, SubtractsThePreviousScrape) {
  const HistogramBuckets before = Buckets({0.1, 1, kInf}, {5, 9, 10});
  const HistogramBuckets after = Buckets({0.1, 1, kInf}, {5, 12, 14});
  const HistogramBuckets delta = BucketDelta(before, after);
  EXPECT_EQ(delta.cumulative, (std::vector<double>{0, 3, 4}));
  // The interval's observations all lie in (0.1, 1] up to one in +Inf.
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.5, delta), 0.1 + 0.9 * 2 / 3);
}

TEST(BucketDeltaTest, ARestartCountsFromZero) {
  const HistogramBuckets before = Buckets({0.1, 1, kInf}, {50, 90, 100});
  const HistogramBuckets after = Buckets({0.1, 1, kInf}, {1, 2, 2});
  EXPECT_EQ(BucketDelta(before, after), after);
  // Other bounds (another build) also start over.
  const HistogramBuckets other = Buckets({0.5, kInf}, {1, 200});
  EXPECT_EQ(BucketDelta(before, other), other);
}

TEST(CounterDeltaTest, ARestartCountsFromZero) {
  EXPECT_EQ(CounterDelta(10, 25), 15);
  EXPECT_EQ(CounterDelta(10, 10), 0);
  EXPECT_EQ(CounterDelta(100, 7), 7);
}

TEST(AddBucketsTest, SumsMatchingBoundsAndRefusesOthers) {
  HistogramBuckets sum;
  ASSERT_TRUE(AddBuckets(sum, Buckets({0.1, kInf}, {1, 2})));
  ASSERT_TRUE(AddBuckets(sum, Buckets({0.1, kInf}, {3, 5})));
  EXPECT_EQ(sum.cumulative, (std::vector<double>{4, 7}));
  EXPECT_FALSE(AddBuckets(sum, Buckets({0.2, kInf}, {3, 5})));
  EXPECT_EQ(sum.cumulative, (std::vector<double>{4, 7}));
}

TEST(ReadHistogramTest, SumsLabelSetsByBound) {
  common::MetricsRegistry registry;
  auto& family = registry.AddHistogram("lat_seconds", "Latency.", {"route"}, {0.1, 1});
  family.WithLabels({"a"}).Observe(0.05);
  family.WithLabels({"b"}).Observe(0.5);
  family.WithLabels({"b"}).Observe(5);
  const ScrapedMetrics metrics = ParsePrometheusText(registry.RenderText());
  const std::optional<HistogramBuckets> b = ReadHistogram(metrics, "lat_seconds");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->upper_bounds, (std::vector<double>{0.1, 1, kInf}));
  EXPECT_EQ(b->cumulative, (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(b->total(), 3);
  EXPECT_FALSE(ReadHistogram(metrics, "missing").has_value());
  EXPECT_FALSE(ReadHistogram(ParsePrometheusText("# TYPE g gauge\ng 1\n"), "g").has_value());
}

}  // namespace
}  // namespace triplane::control
