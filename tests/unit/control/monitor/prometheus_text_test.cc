#include "control/monitor/prometheus_text.h"

#include <cmath>
#include <string>

#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triplane::control {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(PrometheusTextTest, ParsesFamiliesWithHelpTypeLabelsAndSpecialValues) {
  const ScrapedMetrics m = ParsePrometheusText(
      "# HELP triplane_requests_total Requests \\\\ by \\n code.\n"
      "# TYPE triplane_requests_total counter\n"
      "triplane_requests_total{code=\"200\",model=\"a \\\"b\\\"\\n\\\\c\"} 12 1712345678000\n"
      "triplane_requests_total{code=\"500\",} 3\n"
      "# a comment that is neither HELP nor TYPE\n"
      "\n"
      "# TYPE g gauge\n"
      "g{ kind = \"x\" } +Inf\n"
      "g{kind=\"y\"}\t-Inf\n"
      "g{kind=\"z\"} NaN\n"
      "g{kind=\"w\"} 1.5e3\r\n"
      "untyped_thing 7\n");
  EXPECT_EQ(m.rejected_lines, 0) << m.first_error;
  ASSERT_EQ(m.families.size(), 3u);
  const ScrapedFamily* requests = m.Find("triplane_requests_total");
  ASSERT_NE(requests, nullptr);
  EXPECT_EQ(requests->help, "Requests \\ by \n code.");
  EXPECT_EQ(requests->type, SeriesType::kCounter);
  ASSERT_EQ(requests->samples.size(), 2u);
  EXPECT_THAT(requests->samples[0].labels,
              ElementsAre(Pair("code", "200"), Pair("model", "a \"b\"\n\\c")));
  EXPECT_EQ(requests->samples[0].value, 12);
  EXPECT_EQ(m.Sum("triplane_requests_total"), 15);

  const ScrapedFamily* g = m.Find("g");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->type, SeriesType::kGauge);
  ASSERT_EQ(g->samples.size(), 4u);
  EXPECT_TRUE(std::isinf(g->samples[0].value) && g->samples[0].value > 0);
  EXPECT_TRUE(std::isinf(g->samples[1].value) && g->samples[1].value < 0);
  EXPECT_TRUE(std::isnan(g->samples[2].value));
  EXPECT_EQ(g->samples[3].value, 1500);
  EXPECT_EQ(m.Find("untyped_thing")->type, SeriesType::kUntyped);
  EXPECT_EQ(m.Sum("missing"), std::nullopt);
}

TEST(PrometheusTextTest, GroupsHistogramSamplesUnderTheirFamily) {
  const ScrapedMetrics m = ParsePrometheusText(
      "# TYPE lat histogram\n"
      "lat_bucket{le=\"0.1\"} 1\n"
      "lat_bucket{le=\"+Inf\"} 2\n"
      "other 1\n"
      "lat_sum 0.7\n"
      "lat_count 2\n");
  EXPECT_EQ(m.rejected_lines, 0) << m.first_error;
  ASSERT_NE(m.Find("lat"), nullptr);
  EXPECT_EQ(m.Find("lat")->samples.size(), 4u);
  EXPECT_EQ(m.Find("lat_bucket"), nullptr);
  EXPECT_EQ(m.Find("lat_count"), nullptr);
}

TEST(PrometheusTextTest, SkipsMalformedLinesAndKeepsTheRest) {
  const char* bad[] = {
      "no_value",
      "1leading_digit 1",
      "name{unterminated=\"x} 1",
      "name{label=\"bad escape \\t\"} 1",
      "name{label=unquoted} 1",
      "name{label=\"a\" other=\"b\"} 1",
      "name{__reserved=\"a\"} 1",
      "name{dup=\"a\",dup=\"b\"} 1",
      "name{bad-label=\"a\"} 1",
      "name 12abc",
      "name 1 notatimestamp",
      "name 1 2 3",
      "name infinity",
      "name +-1",
      "name{label=\"\xff\xfe\"} 1",
      "# TYPE t unknowntype",
      "# TYPE",
      "# HELP 9bad text",
  };
  std::string text = "# TYPE good gauge\ngood 1\n";
  for (const char* line : bad) text += std::string(line) + "\n";
  text += "good{x=\"2\"} 2\n";
  const ScrapedMetrics m = ParsePrometheusText(text);
  EXPECT_EQ(m.rejected_lines, static_cast<int>(std::size(bad)));
  EXPECT_THAT(m.first_error, HasSubstr("line 3:"));
  EXPECT_EQ(m.Sum("good"), 3);
  EXPECT_EQ(m.Find("name"), nullptr);
}

TEST(PrometheusTextTest, RejectsWhatWouldMakeTheReExportInvalid) {
  const ScrapedMetrics m = ParsePrometheusText(
      "# TYPE h histogram\n"
      "h_bucket{le=\"abc\"} 1\n"         // le is not a number
      "h_bucket 1\n"                     // no le
      "h 3\n"                            // not a histogram sample name
      "h_bucket{le=\"+Inf\"} 1\n"
      "h_bucket{le=\"+Inf\"} 2\n"        // the same series twice
      "c_total 1\n"
      "# TYPE c_total counter\n"         // TYPE after the samples
      "# TYPE h gauge\n"                 // a second TYPE
      "# HELP c_total one\n"
      "# HELP c_total two\n");           // a second HELP
  EXPECT_EQ(m.rejected_lines, 7) << m.first_error;
  EXPECT_EQ(m.Find("h")->samples.size(), 1u);
  EXPECT_EQ(m.Find("h")->type, SeriesType::kHistogram);
  EXPECT_EQ(m.Find("c_total")->type, SeriesType::kUntyped);
}

TEST(PrometheusTextTest, EnforcesItsLimits) {
  std::string text;
  for (int i = 0; i < 10; ++i) text += "s{i=\"" + std::to_string(i) + "\"} 1\n";
  const ScrapedMetrics few = ParsePrometheusText(text, {.max_samples = 4});
  EXPECT_TRUE(few.truncated);
  EXPECT_EQ(few.Sum("s"), 4);

  std::string labels;
  for (int i = 0; i < 5; ++i) labels += "l" + std::to_string(i) + "=\"v\",";
  const ScrapedMetrics many_labels = ParsePrometheusText("x{" + labels + "} 1\n", {.max_labels = 4});
  EXPECT_EQ(many_labels.rejected_lines, 1);

  const ScrapedMetrics long_line =
      ParsePrometheusText("x{l=\"" + std::string(200, 'a') + "\"} 1\ny 1\n", {.max_line_bytes = 100});
  EXPECT_EQ(long_line.rejected_lines, 1);
  EXPECT_EQ(long_line.Sum("y"), 1);
}

TEST(PrometheusTextTest, ReadsWhatOurOwnRegistryRenders) {
  common::MetricsRegistry registry;
  registry.AddCounter("triplane_requests_total", "Requests.", {"model"}).WithLabels({"a\"\\\n"}).Inc(2);
  registry.AddHistogram("triplane_latency_seconds", "Latency.", {}, {0.1, 1}).Get().Observe(0.5);
  registry.AddGauge("triplane_running", "Running.").Get().Set(3);
  const ScrapedMetrics m = ParsePrometheusText(registry.RenderText());
  EXPECT_EQ(m.rejected_lines, 0) << m.first_error;
  EXPECT_EQ(m.Find("triplane_requests_total")->samples[0].labels[0].second, "a\"\\\n");
  EXPECT_EQ(m.Find("triplane_latency_seconds")->samples.size(), 5u);  // 3 buckets, sum, count
  EXPECT_EQ(m.Sum("triplane_running"), 3);
}

TEST(PrometheusTextTest, SurvivesArbitraryBytes) {
  // Not a fuzzer, but every byte value in every position of a sample line.
  const std::string base = "m{l=\"v\"} 1 2\n";
  for (size_t pos = 0; pos < base.size(); ++pos) {
    for (int byte = 0; byte < 256; ++byte) {
      std::string text = base;
      text[pos] = static_cast<char>(byte);
      const ScrapedMetrics m = ParsePrometheusText(text);
      EXPECT_LE(m.rejected_lines, 2);
    }
  }
}

}  // namespace
}  // namespace triplane::control
