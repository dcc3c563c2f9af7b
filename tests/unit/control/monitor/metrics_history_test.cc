#include "control/monitor/metrics_history.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/server_process_util.h"

namespace triplane::control {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

// An engine's /metrics page, rendered by the same registry the engine uses, with the
// families the monitor reads (docs/api.md, engine GET /metrics).
class EnginePage {
 public:
  EnginePage()
      : latency_(registry_.AddHistogram("triplane_e2e_request_latency_seconds", "Arrival to last token.",
                                        {}, {0.1, 0.5, 1, 5}).Get()),
        ttft_(registry_.AddHistogram("triplane_time_to_first_token_seconds", "Arrival to first token.",
                                     {}, {0.01, 0.1, 1}).Get()),
        tpot_(registry_.AddHistogram("triplane_time_per_output_token_seconds", "Between tokens.", {},
                                     {0.01, 0.02, 0.05}).Get()),
        prompt_(registry_.AddCounter("triplane_prompt_tokens_total", "Prompt tokens.").Get()),
        generation_(registry_.AddCounter("triplane_generation_tokens_total", "Tokens generated.").Get()),
        success_(registry_.AddCounter("triplane_request_success_total", "Finished.", {"finished_reason"})),
        running_(registry_.AddGauge("triplane_num_requests_running", "Running.").Get()),
        waiting_(registry_.AddGauge("triplane_num_requests_waiting", "Waiting.").Get()),
        kv_(registry_.AddGauge("triplane_kv_cache_usage_perc", "KV usage.").Get()) {}

  // `n` requests that took `latency` seconds, `ttft` to their first token.
  void Serve(int n, double latency, double ttft = 0.05, double tpot = 0.015) {
    for (int i = 0; i < n; ++i) {
      latency_.Observe(latency);
      ttft_.Observe(ttft);
      tpot_.Observe(tpot);
      success_.WithLabels({"stop"}).Inc();
    }
  }
  void Tokens(double prompt, double generated) {
    prompt_.Inc(prompt);
    generation_.Inc(generated);
  }
  void Gauges(double running, double waiting, double kv) {
    running_.Set(running);
    waiting_.Set(waiting);
    kv_.Set(kv);
  }

  std::shared_ptr<const ScrapedMetrics> Scrape() const {
    return std::make_shared<ScrapedMetrics>(ParsePrometheusText(registry_.RenderText()));
  }

 private:
  common::MetricsRegistry registry_;
  common::Histogram& latency_;
  common::Histogram& ttft_;
  common::Histogram& tpot_;
  common::Counter& prompt_;
  common::Counter& generation_;
  common::Family<common::Counter>& success_;
  common::Gauge& running_;
  common::Gauge& waiting_;
  common::Gauge& kv_;
};

SeriesLabels Deployment(const std::string& name = "demo") {
  return {.deployment = name, .model = name + "-model", .version = "1"};
}

SeriesLabels InstanceOf(const std::string& id, const std::string& deployment = "demo") {
  SeriesLabels labels = Deployment(deployment);
  labels.instance = id;
  return labels;
}

InstanceScrape Observe(const std::string& id, absl::Time t, const EnginePage* page,
                            std::optional<common::ProcessUsage> process = std::nullopt) {
  return {.labels = InstanceOf(id), .time = t, .metrics = page ? page->Scrape() : nullptr,
          .process = process};
}

MetricsPoint Latest(const MetricsHistory& history, const std::string& instance, absl::Time now) {
  std::optional<MetricsSeries> series = history.Instance(instance, absl::Hours(1), now);
  EXPECT_TRUE(series.has_value() && !series->points.empty());
  return series && !series->points.empty() ? series->points.back() : MetricsPoint{};
}

MetricsPoint LatestOfDeployment(const MetricsHistory& history, const std::string& name, absl::Time now) {
  std::optional<MetricsSeries> series = history.Deployment(name, absl::Hours(1), now);
  EXPECT_TRUE(series.has_value() && !series->points.empty());
  return series && !series->points.empty() ? series->points.back() : MetricsPoint{};
}

TEST(MetricsHistoryTest, RatesAndQuantilesComeFromTheDifferenceBetweenScrapes) {
  MetricsHistory history;
  EnginePage engine;
  engine.Serve(100, 4);  // before the monitor looked: not in any interval
  engine.Tokens(1000, 1000);
  history.Record(kT0, {Deployment()}, {Observe("i1", kT0, &engine)});
  const MetricsPoint first = Latest(history, "i1", kT0);
  EXPECT_EQ(first.up, true);
  EXPECT_TRUE(std::isnan(first.requests_per_second));  // nothing to compare with yet
  EXPECT_TRUE(std::isnan(first.latency_p50_seconds));

  engine.Serve(10, 0.3, 0.05);
  engine.Tokens(100, 50);
  engine.Gauges(2, 1, 0.25);
  const absl::Time t1 = kT0 + absl::Seconds(5);
  history.Record(t1, {Deployment()}, {Observe("i1", t1, &engine)});
  const MetricsPoint p = Latest(history, "i1", t1);
  EXPECT_EQ(p.time, t1);
  EXPECT_DOUBLE_EQ(p.requests_per_second, 2);        // 10 in 5 s
  EXPECT_DOUBLE_EQ(p.tokens_per_second, 30);         // 150 in 5 s
  EXPECT_DOUBLE_EQ(p.generation_tokens_per_second, 10);
  // All 10 in (0.1, 0.5]: rank 5 of 10 is half-way, rank 9.9 near the top.
  EXPECT_DOUBLE_EQ(p.latency_p50_seconds, 0.3);
  EXPECT_DOUBLE_EQ(p.latency_p99_seconds, 0.1 + 0.4 * 0.99);
  EXPECT_DOUBLE_EQ(p.ttft_p50_seconds, 0.01 + 0.09 * 0.5);
  EXPECT_DOUBLE_EQ(p.tpot_p50_seconds, 0.015);
  EXPECT_EQ(p.running, 2);
  EXPECT_EQ(p.waiting, 1);
  EXPECT_EQ(p.kv_cache_usage, 0.25);
  EXPECT_TRUE(std::isnan(p.cpu_percent));  // no process given
  EXPECT_TRUE(std::isnan(p.gpu_memory_bytes));

  // An idle interval: zero rates, no quantiles.
  const absl::Time t2 = t1 + absl::Seconds(5);
  history.Record(t2, {Deployment()}, {Observe("i1", t2, &engine)});
  const MetricsPoint idle = Latest(history, "i1", t2);
  EXPECT_EQ(idle.requests_per_second, 0);
  EXPECT_EQ(idle.tokens_per_second, 0);
  EXPECT_TRUE(std::isnan(idle.latency_p50_seconds));
  EXPECT_TRUE(std::isnan(idle.ttft_p99_seconds));
}

TEST(MetricsHistoryTest, AnEngineRestartIsCountedFromZero) {
  MetricsHistory history;
  auto before = std::make_unique<EnginePage>();
  before->Serve(500, 0.3);
  before->Tokens(5000, 5000);
  history.Record(kT0, {Deployment()}, {Observe("i1", kT0, before.get())});
  // The process restarted with the same instance id: its counters began again.
  EnginePage after;
  after.Serve(4, 2);
  after.Tokens(40, 10);
  const absl::Time t1 = kT0 + absl::Seconds(2);
  history.Record(t1, {Deployment()}, {Observe("i1", t1, &after)});
  const MetricsPoint p = Latest(history, "i1", t1);
  EXPECT_DOUBLE_EQ(p.requests_per_second, 2);
  EXPECT_DOUBLE_EQ(p.tokens_per_second, 25);
  EXPECT_DOUBLE_EQ(p.latency_p50_seconds, 1 + 4 * 0.5);  // only the 4 new ones, in (1, 5]
}

TEST(MetricsHistoryTest, AFailedScrapeIsDownAndTheNextRateSpansTheGap) {
  MetricsHistory history;
  EnginePage engine;
  history.Record(kT0, {Deployment()}, {Observe("i1", kT0, &engine)});
  const absl::Time t1 = kT0 + absl::Seconds(5);
  history.Record(t1, {Deployment()}, {Observe("i1", t1, nullptr)});
  const MetricsPoint down = Latest(history, "i1", t1);
  EXPECT_EQ(down.up, false);
  EXPECT_TRUE(std::isnan(down.requests_per_second));
  EXPECT_TRUE(std::isnan(down.running));

  engine.Serve(20, 0.3);
  const absl::Time t2 = t1 + absl::Seconds(5);
  history.Record(t2, {Deployment()}, {Observe("i1", t2, &engine)});
  EXPECT_DOUBLE_EQ(Latest(history, "i1", t2).requests_per_second, 2);  // 20 in 10 s
}

TEST(MetricsHistoryTest, CpuPercentComesFromTheProcessCpuTime) {
  MetricsHistory history;
  EnginePage engine;
  history.Record(kT0, {Deployment()},
                 {Observe("i1", kT0, &engine, common::ProcessUsage{.cpu_seconds = 10, .rss_bytes = 1e8})});
  EXPECT_EQ(Latest(history, "i1", kT0).rss_bytes, 1e8);
  const absl::Time t1 = kT0 + absl::Seconds(5);
  history.Record(t1, {Deployment()},
                 {Observe("i1", t1, &engine, common::ProcessUsage{.cpu_seconds = 17.5, .rss_bytes = 2e8})});
  const MetricsPoint p = Latest(history, "i1", t1);
  EXPECT_DOUBLE_EQ(p.cpu_percent, 150);  // one and a half cores
  EXPECT_EQ(p.rss_bytes, 2e8);
}

TEST(MetricsHistoryTest, ADeploymentAggregatesItsInstancesThatAreUp) {
  MetricsHistory history;
  EnginePage a, b;
  auto round = [&](absl::Time t, double cpu_a, double cpu_b, bool c_up) {
    InstanceScrape c = Observe("c", t, nullptr);  // never answers
    if (c_up) c.metrics = a.Scrape();
    history.Record(t, {Deployment(), Deployment("idle")},
                   {Observe("a", t, &a, common::ProcessUsage{.cpu_seconds = cpu_a, .rss_bytes = 100}),
                    Observe("b", t, &b, common::ProcessUsage{.cpu_seconds = cpu_b, .rss_bytes = 300}),
                    std::move(c)});
  };
  round(kT0, 0, 0, false);
  a.Serve(10, 0.3);  // fast ones
  b.Serve(10, 3);    // slow ones
  a.Tokens(10, 5);
  b.Tokens(20, 15);
  a.Gauges(1, 0, 0.2);
  b.Gauges(3, 2, 0.6);
  const absl::Time t1 = kT0 + absl::Seconds(5);
  round(t1, 5, 2.5, false);

  const MetricsPoint d = LatestOfDeployment(history, "demo", t1);
  EXPECT_FALSE(d.up.has_value());
  EXPECT_DOUBLE_EQ(d.requests_per_second, 4);
  EXPECT_DOUBLE_EQ(d.tokens_per_second, 10);
  EXPECT_DOUBLE_EQ(d.generation_tokens_per_second, 4);
  EXPECT_EQ(d.running, 4);
  EXPECT_EQ(d.waiting, 2);
  EXPECT_DOUBLE_EQ(d.kv_cache_usage, 0.4);  // mean
  EXPECT_DOUBLE_EQ(d.cpu_percent, 75);      // mean of 100 % and 50 %
  EXPECT_EQ(d.rss_bytes, 400);              // sum
  // The median of all 20 requests from the summed buckets: the 10th lies at the top of
  // (0.1, 0.5]. (The instances' own medians, 0.3 and 3, do not average to it.)
  EXPECT_DOUBLE_EQ(d.latency_p50_seconds, 0.5);
  EXPECT_DOUBLE_EQ(d.latency_p99_seconds, 1 + 4 * (19.8 - 10) / 10);

  std::vector<DeploymentMetricsSummary> list = history.Deployments();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].labels, Deployment());
  EXPECT_EQ(list[0].instances, 3);
  ASSERT_TRUE(list[0].latest.has_value());
  EXPECT_EQ(list[0].latest->time, t1);
  EXPECT_EQ(list[1].labels.deployment, "idle");
  EXPECT_EQ(list[1].instances, 0);
  ASSERT_TRUE(list[1].latest.has_value());
  EXPECT_TRUE(std::isnan(list[1].latest->requests_per_second));  // no instance: unknown
}

TEST(MetricsHistoryTest, SeriesKeepTheRetentionAtMostAndAreBoundedInPoints) {
  MetricsHistory history({.interval = absl::Seconds(5), .retention = absl::Seconds(60)});
  EnginePage engine;
  absl::Time t = kT0;
  for (int i = 0; i < 100; ++i, t += absl::Seconds(5)) {
    history.Record(t, {Deployment()}, {Observe("i1", t, &engine)});
  }
  const absl::Time last = t - absl::Seconds(5);
  const std::optional<MetricsSeries> series = history.Instance("i1", absl::Hours(1), last);
  ASSERT_TRUE(series.has_value());
  EXPECT_EQ(series->points.size(), 13u);  // 60 s at 5 s, both ends included
  EXPECT_EQ(series->points.front().time, last - absl::Seconds(60));
  EXPECT_EQ(series->points.back().time, last);
  EXPECT_EQ(history.Deployment("demo", absl::Hours(1), last)->points.size(), 13u);
  // The window picks the newest points.
  EXPECT_EQ(history.Instance("i1", absl::Seconds(12), last)->points.size(), 3u);

  // Rounds faster than the interval cannot grow a ring beyond its bound.
  for (int i = 0; i < 100; ++i, t += absl::Milliseconds(10)) {
    history.Record(t, {Deployment()}, {Observe("i1", t, &engine)});
  }
  EXPECT_EQ(history.Instance("i1", absl::Hours(1), t)->points.size(), 13u);
}

TEST(MetricsHistoryTest, SeriesNoLongerObservedAreDroppedAfterTheRetention) {
  MetricsHistory history({.interval = absl::Seconds(5), .retention = absl::Seconds(60)});
  EnginePage engine;
  history.Record(kT0, {Deployment(), Deployment("gone")}, {Observe("old", kT0, &engine)});
  // The instance and the deployment "gone" disappear; "demo" goes on with another one.
  absl::Time t = kT0;
  for (int i = 1; i <= 12; ++i) {
    t = kT0 + absl::Seconds(5 * i);
    history.Record(t, {Deployment()}, {Observe("new", t, &engine)});
  }
  EXPECT_TRUE(history.Instance("old", absl::Hours(1), t).has_value());  // 60 s: still kept
  EXPECT_TRUE(history.Deployment("gone", absl::Hours(1), t).has_value());
  t += absl::Seconds(5);
  history.Record(t, {Deployment()}, {Observe("new", t, &engine)});
  EXPECT_FALSE(history.Instance("old", absl::Hours(1), t).has_value());
  EXPECT_FALSE(history.Deployment("gone", absl::Hours(1), t).has_value());
  EXPECT_TRUE(history.Instance("new", absl::Hours(1), t).has_value());
  EXPECT_EQ(history.Deployments().size(), 1u);
}

TEST(MetricsHistoryTest, ReExportsTheLatestScrapesRelabelledAndValid) {
  MetricsHistory history;
  EnginePage a, b;
  a.Serve(3, 0.3);
  b.Serve(1, 2);
  a.Gauges(2, 0, 0.5);
  const std::string page_with_conflicts =
      "# HELP triplane_num_requests_running Running.\n"
      "# TYPE triplane_num_requests_running gauge\n"
      "triplane_num_requests_running{deployment=\"fake\",instance=\"fake\"} 9\n"
      "# HELP triplane_instance_up Not ours.\n"
      "# TYPE triplane_instance_up gauge\n"
      "triplane_instance_up 5\n"
      "# HELP process_open_fds Taken by the registry.\n"
      "# TYPE process_open_fds gauge\n"
      "process_open_fds 3\n";
  InstanceScrape c{.labels = InstanceOf("c", "other"),
                        .time = kT0,
                        .metrics = std::make_shared<ScrapedMetrics>(ParsePrometheusText(page_with_conflicts)),
                        .process = common::ProcessUsage{.cpu_seconds = 1.5, .rss_bytes = 4096}};
  history.Record(kT0, {Deployment(), Deployment("other")},
                 {Observe("a", kT0, &a), Observe("b", kT0, &b), std::move(c), Observe("d", kT0, nullptr)});

  std::string text;
  history.AppendRelabelled([](std::string_view name) { return name.starts_with("process_"); }, &text);
  // One HELP and TYPE per family, every instance's samples under it.
  EXPECT_EQ(text.find("# TYPE triplane_num_requests_running gauge"),
            text.rfind("# TYPE triplane_num_requests_running gauge"));
  EXPECT_THAT(text, HasSubstr("triplane_num_requests_running{deployment=\"demo\",model=\"demo-model\","
                              "version=\"1\",instance=\"a\"} 2\n"));
  // An engine cannot pose as another deployment or instance.
  EXPECT_THAT(text, HasSubstr("triplane_num_requests_running{deployment=\"other\",model=\"other-model\","
                              "version=\"1\",instance=\"c\"} 9\n"));
  EXPECT_THAT(text, Not(HasSubstr("fake")));
  EXPECT_THAT(text, HasSubstr("triplane_e2e_request_latency_seconds_bucket{deployment=\"demo\","
                              "model=\"demo-model\",version=\"1\",instance=\"b\",le=\"5\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("triplane_request_success_total{deployment=\"demo\",model=\"demo-model\","
                              "version=\"1\",instance=\"a\",finished_reason=\"stop\"} 3\n"));
  // The monitor's own families; an engine's family of that name is not passed through.
  EXPECT_THAT(text, HasSubstr("triplane_instance_up{deployment=\"demo\",model=\"demo-model\",version=\"1\","
                              "instance=\"d\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("instance=\"a\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("triplane_instance_up 5")));
  EXPECT_THAT(text, HasSubstr("triplane_instance_cpu_seconds_total{deployment=\"other\",model=\"other-model\","
                              "version=\"1\",instance=\"c\"} 1.5\n"));
  EXPECT_THAT(text, HasSubstr("triplane_instance_resident_memory_bytes{"));
  // Names the registry owns are left to it.
  EXPECT_THAT(text, Not(HasSubstr("process_open_fds")));

  constexpr char kPromtool[] = "/usr/bin/promtool";
  ASSERT_EQ(access(kPromtool, X_OK), 0) << kPromtool << " is required (apt install prometheus)";
  const std::string prefix = ::testing::TempDir() + "/monitor_promtool_" + std::to_string(getpid());
  std::ofstream(prefix + "_input.txt") << text;
  const std::string command = std::string(kPromtool) + " check metrics < " + prefix + "_input.txt > " +
                              prefix + "_output.txt 2>&1";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << testing::ReadWholeFile(prefix + "_output.txt") << "\n" << text;
  EXPECT_EQ(testing::ReadWholeFile(prefix + "_output.txt"), "") << text;
  std::remove((prefix + "_input.txt").c_str());
  std::remove((prefix + "_output.txt").c_str());
}

}  // namespace
}  // namespace triplane::control
