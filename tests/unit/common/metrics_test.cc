#include "common/metrics.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "common/process_metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triplane::common {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The value of the sample line that starts with `series` (name plus labels), if any.
std::optional<double> SampleValue(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.starts_with(series + " ")) return std::strtod(line.c_str() + series.size(), nullptr);
  }
  return std::nullopt;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// ---- Metric types ------------------------------------------------------------------

TEST(MetricsCounterTest, StartsAtZeroAndAddsIncrements) {
  Counter counter;
  EXPECT_EQ(counter.Value(), 0.0);
  counter.Inc();
  counter.Inc(2.5);
  EXPECT_EQ(counter.Value(), 3.5);
}

TEST(MetricsCounterTest, IgnoresNegativeAndNonFiniteIncrements) {
  Counter counter;
  counter.Inc(2);
  counter.Inc(-1);
  counter.Inc(std::numeric_limits<double>::quiet_NaN());
  counter.Inc(std::numeric_limits<double>::infinity());
  EXPECT_EQ(counter.Value(), 2.0);
}

TEST(MetricsCounterTest, ConcurrentIncrementsFromSeveralThreadsSumExactly) {
  MetricsRegistry registry;
  Family<Counter>& family = registry.AddCounter("hits_total", "Hits.", {"model"});
  constexpr int kThreads = 4;
  constexpr int kIncrements = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&family] {
      // Every thread looks the child up itself, racing to create it.
      Counter& counter = family.WithLabels({"llama"});
      for (int i = 0; i < kIncrements; ++i) counter.Inc(0.5);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(family.WithLabels({"llama"}).Value(), kThreads * kIncrements * 0.5);
}

TEST(MetricsGaugeTest, SetsIncrementsAndDecrements) {
  Gauge gauge;
  gauge.Set(10);
  gauge.Inc();
  gauge.Inc(4);
  gauge.Dec(2.5);
  EXPECT_EQ(gauge.Value(), 12.5);
  gauge.Set(-3);
  EXPECT_EQ(gauge.Value(), -3.0);
}

TEST(MetricsHistogramTest, CountsObservationsIntoInclusiveUpperBounds) {
  const std::vector<double> bounds = {0.1, 1, 10};
  Histogram histogram(bounds);
  for (double v : {0.05, 0.1, 0.5, 1.0, 100.0}) histogram.Observe(v);
  const Histogram::Snapshot snapshot = histogram.Read();
  EXPECT_EQ(snapshot.cumulative_counts, (std::vector<uint64_t>{2, 4, 4, 5}));
  EXPECT_EQ(snapshot.count, 5u);
  EXPECT_DOUBLE_EQ(snapshot.sum, 101.65);
}

TEST(MetricsHistogramTest, IgnoresNaNObservations) {
  const std::vector<double> bounds = {1};
  Histogram histogram(bounds);
  histogram.Observe(std::numeric_limits<double>::quiet_NaN());
  histogram.Observe(0.5);
  EXPECT_EQ(histogram.Read().count, 1u);
  EXPECT_EQ(histogram.Read().sum, 0.5);
}

TEST(MetricsHistogramTest, ConcurrentObservationsCountExactly) {
  const std::vector<double> bounds = {1, 2};
  Histogram histogram(bounds);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&histogram, t] {
      for (int i = 0; i < 50000; ++i) histogram.Observe(t % 3);  // 0, 1, 2, 0
    });
  }
  for (std::thread& thread : threads) thread.join();
  const Histogram::Snapshot snapshot = histogram.Read();
  EXPECT_EQ(snapshot.cumulative_counts, (std::vector<uint64_t>{150000, 200000, 200000}));
  EXPECT_EQ(snapshot.sum, 150000.0);
}

// ---- Registry and rendering --------------------------------------------------------

TEST(MetricsRegistryTest, RendersCounterWithHelpTypeAndTotalSuffix) {
  MetricsRegistry registry;
  registry.AddCounter("requests_total", "Requests served.").Get().Inc(3);
  EXPECT_EQ(registry.RenderText(),
            "# HELP requests_total Requests served.\n"
            "# TYPE requests_total counter\n"
            "requests_total 3\n");
}

TEST(MetricsRegistryTest, RendersNumbersSoPrometheusParsesThem) {
  MetricsRegistry registry;
  auto& gauge = registry.AddGauge("value", "A value.", {"case"});
  gauge.WithLabels({"million"}).Set(1e6);
  gauge.WithLabels({"negative"}).Set(-42);
  gauge.WithLabels({"fraction"}).Set(0.25);
  gauge.WithLabels({"tiny"}).Set(1e-7);
  gauge.WithLabels({"huge"}).Set(1e300);
  gauge.WithLabels({"inf"}).Set(std::numeric_limits<double>::infinity());
  gauge.WithLabels({"minus_inf"}).Set(-std::numeric_limits<double>::infinity());
  gauge.WithLabels({"nan"}).Set(std::numeric_limits<double>::quiet_NaN());
  const std::string text = registry.RenderText();
  EXPECT_THAT(text, HasSubstr("value{case=\"million\"} 1000000\n"));
  EXPECT_THAT(text, HasSubstr("value{case=\"negative\"} -42\n"));
  EXPECT_THAT(text, HasSubstr("value{case=\"fraction\"} 0.25\n"));
  EXPECT_THAT(text, HasSubstr("value{case=\"tiny\"} 1e-07\n"));
  EXPECT_THAT(text, HasSubstr("value{case=\"huge\"} 1e+300\n"));
  EXPECT_THAT(text, HasSubstr("value{case=\"inf\"} +Inf\n"));
  EXPECT_THAT(text, HasSubstr("value{case=\"minus_inf\"} -Inf\n"));
  EXPECT_THAT(text, HasSubstr("value{case=\"nan\"} NaN\n"));
}

TEST(MetricsRegistryTest, RendersHistogramBucketsCumulatively) {
  MetricsRegistry registry;
  auto& family = registry.AddHistogram("latency_seconds", "Latency.", {"route"}, {0.005, 0.5, 1});
  Histogram& histogram = family.WithLabels({"/v1/chat"});
  for (double v : {0.001, 0.2, 0.3, 5.0}) histogram.Observe(v);
  EXPECT_EQ(registry.RenderText(),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{route=\"/v1/chat\",le=\"0.005\"} 1\n"
            "latency_seconds_bucket{route=\"/v1/chat\",le=\"0.5\"} 3\n"
            "latency_seconds_bucket{route=\"/v1/chat\",le=\"1\"} 3\n"
            "latency_seconds_bucket{route=\"/v1/chat\",le=\"+Inf\"} 4\n"
            "latency_seconds_sum{route=\"/v1/chat\"} 5.501\n"
            "latency_seconds_count{route=\"/v1/chat\"} 4\n");
}

TEST(MetricsRegistryTest, RendersUnlabelledHistogramWithOnlyTheLeLabel) {
  MetricsRegistry registry;
  registry.AddHistogram("size_bytes", "Sizes.", {}, {10}).Get().Observe(3);
  const std::string text = registry.RenderText();
  EXPECT_THAT(text, HasSubstr("size_bytes_bucket{le=\"10\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("size_bytes_bucket{le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("size_bytes_sum 3\nsize_bytes_count 1\n"));
}

TEST(MetricsRegistryTest, SortsFamiliesByNameAndChildrenByLabelValues) {
  MetricsRegistry registry;
  auto& b = registry.AddGauge("b_gauge", "B.", {"model", "code"});
  registry.AddGauge("a_gauge", "A.").Get().Set(1);
  b.WithLabels({"zeta", "200"}).Set(1);
  b.WithLabels({"alpha", "500"}).Set(2);
  b.WithLabels({"alpha", "200"}).Set(3);
  EXPECT_EQ(registry.RenderText(),
            "# HELP a_gauge A.\n# TYPE a_gauge gauge\na_gauge 1\n"
            "# HELP b_gauge B.\n# TYPE b_gauge gauge\n"
            "b_gauge{model=\"alpha\",code=\"200\"} 3\n"
            "b_gauge{model=\"alpha\",code=\"500\"} 2\n"
            "b_gauge{model=\"zeta\",code=\"200\"} 1\n");
}

TEST(MetricsRegistryTest, OmitsLabelledFamiliesWithoutChildrenButRendersUnlabelledAtZero) {
  MetricsRegistry registry;
  registry.AddCounter("labelled_total", "L.", {"model"});
  registry.AddCounter("plain_total", "P.");
  EXPECT_EQ(registry.RenderText(),
            "# HELP plain_total P.\n# TYPE plain_total counter\nplain_total 0\n");
}

TEST(MetricsRegistryTest, EscapesLabelValuesAndHelpText) {
  MetricsRegistry registry;
  registry.AddGauge("escaped", "Help with \\ backslash\nand \"quotes\".", {"model"})
      .WithLabels({"a\\b\"c\nd"})
      .Set(1);
  EXPECT_EQ(registry.RenderText(),
            "# HELP escaped Help with \\\\ backslash\\nand \"quotes\".\n"
            "# TYPE escaped gauge\n"
            "escaped{model=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(MetricsRegistryTest, ReplacesInvalidUtf8InLabelValues) {
  MetricsRegistry registry;
  auto& family = registry.AddCounter("bytes_total", "B.", {"model"});
  family.WithLabels({"ok-\xC3\xA9-\xFF"}).Inc();
  // The same raw value maps to the same (sanitized) child.
  family.WithLabels({"ok-\xC3\xA9-\xFF"}).Inc();
  EXPECT_THAT(registry.RenderText(),
              HasSubstr("bytes_total{model=\"ok-\xC3\xA9-\xEF\xBF\xBD\"} 2\n"));
}

TEST(MetricsRegistryTest, WithLabelsReturnsTheSameChildForTheSameValues) {
  MetricsRegistry registry;
  auto& family = registry.AddCounter("calls_total", "C.", {"model", "code"});
  const std::vector<std::string> values = {"llama", "200"};
  Counter& first = family.WithLabels({"llama", "200"});
  EXPECT_EQ(&first, &family.WithLabels(values));
  EXPECT_NE(&first, &family.WithLabels({"llama", "500"}));
}

TEST(MetricsRegistryTest, ReRegistrationReturnsTheSameFamily) {
  MetricsRegistry registry;
  auto& counter = registry.AddCounter("c_total", "C.", {"model"});
  auto& gauge = registry.AddGauge("g", "G.");
  auto& histogram = registry.AddHistogram("h_seconds", "H.", {"model"}, {1, 2});
  EXPECT_EQ(&counter, &registry.AddCounter("c_total", "C.", {"model"}));
  EXPECT_EQ(&gauge, &registry.AddGauge("g", "G."));
  // A trailing +Inf bound is implicit, so it does not make the buckets differ.
  EXPECT_EQ(&histogram, &registry.AddHistogram("h_seconds", "H.", {"model"},
                                               {1, 2, std::numeric_limits<double>::infinity()}));
}

TEST(MetricsRegistryTest, RendersCallbackMetricsAtRenderTime) {
  MetricsRegistry registry;
  double usage = 0.25;
  registry.AddCallback("kv_cache_usage_ratio", "KV cache usage.", MetricType::kGauge,
                       [&usage] { return usage; });
  registry.AddCallback("evictions_total", "Evictions.", MetricType::kCounter, [] { return 7.0; });
  EXPECT_EQ(SampleValue(registry.RenderText(), "kv_cache_usage_ratio"), 0.25);
  usage = 0.75;
  const std::string text = registry.RenderText();
  EXPECT_EQ(SampleValue(text, "kv_cache_usage_ratio"), 0.75);
  EXPECT_THAT(text, HasSubstr("# TYPE evictions_total counter\nevictions_total 7\n"));
}

TEST(MetricsRegistryTest, ReRegisteringACallbackReplacesItsReadFunction) {
  MetricsRegistry registry;
  registry.AddCallback("workers", "W.", MetricType::kGauge, [] { return 1.0; });
  registry.AddCallback("workers", "W.", MetricType::kGauge, [] { return 2.0; });
  EXPECT_EQ(SampleValue(registry.RenderText(), "workers"), 2.0);
}

TEST(MetricsRegistryTest, DefaultIsOneProcessWideRegistry) {
  EXPECT_EQ(&MetricsRegistry::Default(), &MetricsRegistry::Default());
}

TEST(MetricsBucketsTest, LatencyBucketsIncreaseFromHalfAMillisecondToAMinute) {
  const std::vector<double> buckets = LatencyBucketsSeconds();
  ASSERT_FALSE(buckets.empty());
  EXPECT_EQ(buckets.front(), 0.0005);
  EXPECT_EQ(buckets.back(), 60.0);
  for (size_t i = 1; i < buckets.size(); ++i) EXPECT_LT(buckets[i - 1], buckets[i]);
}

TEST(MetricsBucketsTest, ExponentialBucketsMultiplyByFactorWithoutFloatNoise) {
  EXPECT_EQ(ExponentialBuckets(0.001, 10, 4), (std::vector<double>{0.001, 0.01, 0.1, 1}));
  EXPECT_EQ(ExponentialBuckets(1, 2, 5), (std::vector<double>{1, 2, 4, 8, 16}));
  MetricsRegistry registry;
  registry.AddHistogram("t_seconds", "T.", {}, ExponentialBuckets(0.001, 3, 5)).Get();
  EXPECT_THAT(registry.RenderText(), HasSubstr("le=\"0.081\""));
}

// ---- Programmer errors abort -------------------------------------------------------

class MetricsRegistryDeathTest : public ::testing::Test {
 protected:
  // Other tests start threads; re-executing the binary keeps death tests reliable.
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
  MetricsRegistry registry_;
};

TEST_F(MetricsRegistryDeathTest, AbortsOnInvalidMetricNames) {
  EXPECT_DEATH(registry_.AddGauge("job:rate", "Colon."), "invalid metric name \"job:rate\"");
  EXPECT_DEATH(registry_.AddGauge("1st", "Digit."), "invalid metric name");
  EXPECT_DEATH(registry_.AddGauge("", "Empty."), "invalid metric name");
  EXPECT_DEATH(registry_.AddGauge("with-dash", "Dash."), "invalid metric name");
}

TEST_F(MetricsRegistryDeathTest, AbortsOnCounterWithoutTotalSuffix) {
  EXPECT_DEATH(registry_.AddCounter("requests", "R."), "suffix \"_total\"");
  EXPECT_DEATH(registry_.AddCallback("requests", "R.", MetricType::kCounter, [] { return 0.0; }),
               "suffix \"_total\"");
}

TEST_F(MetricsRegistryDeathTest, AbortsOnInvalidOrReservedLabelNames) {
  EXPECT_DEATH(registry_.AddGauge("g", "G.", {"bad-label"}), "invalid label name");
  EXPECT_DEATH(registry_.AddGauge("g", "G.", {"__name"}), "label name \"__name\" is reserved");
  EXPECT_DEATH(registry_.AddHistogram("h", "H.", {"le"}, {1}), "label name \"le\" is reserved");
  EXPECT_DEATH(registry_.AddGauge("g", "G.", {"a", "a"}), "duplicate label name");
}

TEST_F(MetricsRegistryDeathTest, AbortsOnConflictingReRegistration) {
  registry_.AddCounter("x_total", "X.", {"model"});
  registry_.AddHistogram("h", "H.", {}, {1, 2});
  EXPECT_DEATH(registry_.AddCounter("x_total", "X.", {"route"}),
               "already registered as counter\\{model\\}");
  EXPECT_DEATH(registry_.AddCallback("x_total", "X.", MetricType::kCounter, [] { return 0.0; }),
               "already registered");
  EXPECT_DEATH(registry_.AddHistogram("h", "H.", {}, {1, 3}), "already registered as histogram");
  EXPECT_DEATH(registry_.AddGauge("h", "H."), "already registered as histogram");
  // A different family whose samples would clash with the histogram's.
  EXPECT_DEATH(registry_.AddGauge("h_count", "C."), "would expose sample \"h_count\"");
}

TEST_F(MetricsRegistryDeathTest, AbortsOnLabelCountMismatchAndGetOnLabelledFamily) {
  auto& family = registry_.AddGauge("g", "G.", {"model", "code"});
  EXPECT_DEATH(family.WithLabels({"llama"}), "has 2 labels \\[model, code\\] but got 1 values");
  EXPECT_DEATH(family.Get(), "use WithLabels");
}

TEST_F(MetricsRegistryDeathTest, AbortsOnBadBucketsAndHistogramCallbacks) {
  EXPECT_DEATH(registry_.AddHistogram("h", "H.", {}, {1, 1}), "strictly increasing");
  EXPECT_DEATH(registry_.AddHistogram("h", "H.", {}, {std::nan("")}), "strictly increasing");
  EXPECT_DEATH(ExponentialBuckets(0, 2, 3), "requires start > 0");
  EXPECT_DEATH(registry_.AddCallback("h", "H.", MetricType::kHistogram, [] { return 0.0; }),
               "must be a counter or a gauge");
}

// ---- Process metrics ---------------------------------------------------------------

TEST(ProcessMetricsTest, ExportsPlausibleProcessMetrics) {
  MetricsRegistry registry;
  RegisterProcessMetrics(registry);
  const std::string text = registry.RenderText();
  const auto value = [&text](const std::string& name) {
    const std::optional<double> v = SampleValue(text, name);
    EXPECT_TRUE(v.has_value()) << name << " missing from\n" << text;
    return v.value_or(std::nan(""));
  };
  const double rss = value("process_resident_memory_bytes");
  EXPECT_GT(rss, 0);
  EXPECT_GE(value("process_virtual_memory_bytes"), rss);
  EXPECT_GE(value("process_cpu_seconds_total"), 0);
  EXPECT_GE(value("process_open_fds"), 1);
  EXPECT_GE(value("process_max_fds"), value("process_open_fds"));
  EXPECT_GE(value("process_threads"), 1);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(value("process_start_time_seconds"), now + 1);
  EXPECT_GT(value("process_start_time_seconds"), now - 24 * 3600);
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
}

TEST(ProcessMetricsTest, ThreadCountIncludesRunningThreads) {
  MetricsRegistry registry;
  RegisterProcessMetrics(registry);
  constexpr int kThreads = 3;
  absl::Notification done;
  std::vector<std::thread> waiters;
  for (int i = 0; i < kThreads; ++i) {
    waiters.emplace_back([&done] { done.WaitForNotification(); });
  }
  // At least the waiters and this thread; threads of earlier tests may still be exiting.
  EXPECT_GE(SampleValue(registry.RenderText(), "process_threads"), kThreads + 1);
  done.Notify();
  for (std::thread& waiter : waiters) waiter.join();
}

TEST(ProcessMetricsTest, RegisteringTwiceIsHarmless) {
  MetricsRegistry registry;
  RegisterProcessMetrics(registry);
  RegisterProcessMetrics(registry);
  const std::string text = registry.RenderText();
  EXPECT_EQ(text.find("# TYPE process_threads"), text.rfind("# TYPE process_threads"));
}

TEST(MetricsRegistryTest, CollectorsRenderAfterTheFamiliesAndSeeTheTakenNames) {
  MetricsRegistry registry;
  registry.AddGauge("own_gauge", "Ours.").Get().Set(1);
  registry.AddHistogram("own_seconds", "Ours.", {}, {1}).Get().Observe(0.5);
  std::vector<std::string> asked;
  registry.SetCollector("other", [&asked](const std::function<bool(std::string_view)>& taken,
                                          std::string* out) {
    for (const char* name : {"own_gauge", "own_seconds_bucket", "own_seconds", "foreign_gauge"}) {
      if (!taken(name)) asked.push_back(name);
    }
    out->append("# HELP foreign_gauge Theirs.\n# TYPE foreign_gauge gauge\nforeign_gauge 2\n");
  });
  const std::string text = registry.RenderText();
  EXPECT_EQ(asked, std::vector<std::string>{"foreign_gauge"});
  EXPECT_GT(text.find("foreign_gauge 2\n"), text.find("own_seconds_count"));
  EXPECT_EQ(SampleValue(text, "own_gauge"), 1);

  registry.SetCollector("other", {});  // removed: nothing calls it any more
  asked.clear();
  EXPECT_THAT(registry.RenderText(), Not(HasSubstr("foreign_gauge")));
  EXPECT_TRUE(asked.empty());
}

TEST(ExpositionTest, EscapesAndFormatsLikeTheRegistry) {
  std::string out;
  exposition::AppendLabelValue(&out, "a\"b\\c\nd");
  EXPECT_EQ(out, "a\\\"b\\\\c\\nd");
  out.clear();
  exposition::AppendHelp(&out, "a\"b\nc");
  EXPECT_EQ(out, "a\"b\\nc");
  out.clear();
  exposition::AppendValue(&out, std::numeric_limits<double>::infinity());
  exposition::AppendValue(&out, 0.25);
  EXPECT_EQ(out, "+Inf0.25");
  EXPECT_EQ(exposition::ToValidUtf8("ok\xff"), "ok\xEF\xBF\xBD");
}

// ---- End to end: the official linter accepts our output ----------------------------

TEST(MetricsRegistryTest, PassesPromtoolCheckMetricsWithoutLintWarnings) {
  constexpr char kPromtool[] = "/usr/bin/promtool";
  ASSERT_EQ(access(kPromtool, X_OK), 0) << kPromtool << " is required (apt install prometheus)";

  MetricsRegistry registry;
  auto& requests = registry.AddCounter("triplane_requests_total", "Requests by model and code.",
                                       {"model", "code"});
  requests.WithLabels({"llama-3\\8b \"instruct\"\nv2", "200"}).Inc(12);
  requests.WithLabels({"bad-utf8-\xFF", "500"}).Inc();
  registry.AddGauge("triplane_running_requests", "Requests in flight.").Get().Set(3);
  registry.AddGauge("triplane_weird_value", "Special values.", {"kind"})
      .WithLabels({"nan"})
      .Set(std::numeric_limits<double>::quiet_NaN());
  registry.AddGauge("triplane_weird_value", "Special values.", {"kind"})
      .WithLabels({"inf"})
      .Set(std::numeric_limits<double>::infinity());
  auto& latency = registry.AddHistogram("triplane_request_duration_seconds",
                                        "Request latency.\nMultiline \\ help.", {"model"},
                                        LatencyBucketsSeconds());
  for (double v : {0.0001, 0.02, 0.3, 4.0, 100.0}) latency.WithLabels({"m\"1"}).Observe(v);
  registry
      .AddHistogram("triplane_batch_tokens", "Tokens per batch.", {}, ExponentialBuckets(1, 2, 12))
      .Get()
      .Observe(100);
  registry.AddCallback("triplane_kv_cache_usage_ratio", "KV cache usage.", MetricType::kGauge,
                       [] { return 0.5; });
  registry.AddCallback("triplane_evictions_total", "Evictions.", MetricType::kCounter,
                       [] { return 2.0; });
  RegisterProcessMetrics(registry);

  const std::string prefix = ::testing::TempDir() + "/metrics_promtool_" + std::to_string(getpid());
  const std::string input = prefix + "_input.txt";
  const std::string output = prefix + "_output.txt";
  {
    std::ofstream out(input);
    out << registry.RenderText();
  }
  const std::string command =
      std::string(kPromtool) + " check metrics < " + input + " > " + output + " 2>&1";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << command;
  EXPECT_EQ(WEXITSTATUS(status), 0) << ReadFile(output) << "\n--- input ---\n" << ReadFile(input);
  EXPECT_EQ(ReadFile(output), "") << "--- input ---\n" << ReadFile(input);
  EXPECT_THAT(ReadFile(input), Not(HasSubstr("e+")));  // no exponent noise in this data
  std::remove(input.c_str());
  std::remove(output.c_str());
}

}  // namespace
}  // namespace triplane::common
