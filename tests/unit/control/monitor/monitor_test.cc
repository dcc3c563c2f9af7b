#include "control/monitor/monitor.h"

#include <unistd.h>

#include <cmath>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/process_metrics.h"
#include "control/monitor/gpu_usage.h"
#include "gtest/gtest.h"
#include "testing/server_process_util.h"

namespace triplane::control {
namespace {

// Real HTTP servers on 127.0.0.1: one rendering a registry like an engine, one that
// takes requests and never answers them.
class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    running_ = &registry_.AddGauge("triplane_num_requests_running", "Running.").Get();
    latency_ = &registry_.AddHistogram("triplane_e2e_request_latency_seconds", "Latency.", {}, {0.1, 1}).Get();
    common::HttpRouter router;
    common::AddMetricsRoute(router, registry_);
    engine_ = std::make_unique<common::HttpServer>(common::HttpServerOptions{.port = 0, .threads = 1},
                                                   std::move(router));
    ASSERT_TRUE(engine_->Start().ok());

    common::HttpRouter silent;
    silent.Add(common::HttpMethod::kGet, "/metrics",
               common::HttpHandler([this](std::shared_ptr<common::Responder> responder) {
                 absl::MutexLock lock(&held_mu_);
                 held_.push_back(std::move(responder));  // answered only at shutdown
               }));
    silent_ = std::make_unique<common::HttpServer>(common::HttpServerOptions{.port = 0, .threads = 1},
                                                   std::move(silent));
    ASSERT_TRUE(silent_->Start().ok());
  }

  void TearDown() override {
    engine_->Shutdown(std::chrono::milliseconds(0));
    {
      absl::MutexLock lock(&held_mu_);
      for (auto& responder : held_) responder->Send(common::HttpResponse::Json(503, {}));
      held_.clear();
    }
    silent_->Shutdown(std::chrono::milliseconds(0));
  }

  MonitorTargets Targets() {
    const SeriesLabels demo{.deployment = "demo", .model = "demo", .version = "1"};
    auto instance = [&demo](const std::string& id) {
      SeriesLabels labels = demo;
      labels.instance = id;
      return labels;
    };
    return {.deployments = {demo},
            .instances = {
                {.labels = instance("live"),
                 .url = "http://127.0.0.1:" + std::to_string(engine_->port()),
                 .pid = ::getpid()},
                {.labels = instance("refused"),
                 .url = "http://127.0.0.1:" + std::to_string(testing::FreeLoopbackPort())},
                {.labels = instance("silent"), .url = "http://127.0.0.1:" + std::to_string(silent_->port())},
            }};
  }

  MetricsPoint Latest(const Monitor& monitor, const std::string& id) {
    std::optional<MetricsSeries> series = monitor.history().Instance(id, absl::Hours(1), absl::Now());
    EXPECT_TRUE(series.has_value() && !series->points.empty()) << id;
    return series && !series->points.empty() ? series->points.back() : MetricsPoint{};
  }

  common::MetricsRegistry registry_;
  common::Gauge* running_ = nullptr;
  common::Histogram* latency_ = nullptr;
  std::unique_ptr<common::HttpServer> engine_, silent_;
  absl::Mutex held_mu_;
  std::vector<std::shared_ptr<common::Responder>> held_ ABSL_GUARDED_BY(held_mu_);
};

TEST_F(MonitorTest, ScrapesEveryTargetAndMarksTheUnreachableDown) {
  Monitor monitor({.scrape_timeout = absl::Milliseconds(300), .targets = [this] { return Targets(); }});
  running_->Set(3);
  monitor.ScrapeOnce();
  latency_->Observe(0.5);
  latency_->Observe(0.5);
  // Burn some CPU in this process (the "live" instance's pid) between the rounds.
  volatile double sink = 0;
  for (int i = 0; i < 20'000'000; ++i) sink = sink + std::sqrt(static_cast<double>(i));
  monitor.ScrapeOnce();

  const MetricsPoint live = Latest(monitor, "live");
  EXPECT_EQ(live.up, true);
  EXPECT_EQ(live.running, 3);
  EXPECT_GT(live.requests_per_second, 0);
  EXPECT_GT(live.latency_p50_seconds, 0.1);
  EXPECT_LE(live.latency_p50_seconds, 1);
  EXPECT_GT(live.rss_bytes, 1e6);
  EXPECT_GT(live.cpu_percent, 0);
  EXPECT_EQ(Latest(monitor, "refused").up, false);
  EXPECT_EQ(Latest(monitor, "silent").up, false);
  EXPECT_TRUE(std::isnan(Latest(monitor, "refused").rss_bytes));  // no pid given

  std::optional<MetricsSeries> demo = monitor.history().Deployment("demo", absl::Hours(1), absl::Now());
  ASSERT_TRUE(demo.has_value());
  ASSERT_EQ(demo->points.size(), 2u);
  EXPECT_EQ(demo->points.back().running, 3);  // the live instance's alone
}

TEST_F(MonitorTest, TheLoopScrapesUntilStopped) {
  absl::Mutex mu;
  int rounds = 0;
  Monitor monitor({.interval = absl::Seconds(1),
                   .targets = [&] {
                     absl::MutexLock lock(&mu);
                     ++rounds;
                     return absl::StatusOr<MonitorTargets>(Targets());
                   }});
  monitor.Start();
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(+[](int* n) { return *n >= 2; }, &rounds));
  }
  monitor.Stop();  // joins the loop: no round runs after it
  absl::MutexLock lock(&mu);
  EXPECT_EQ(monitor.history().Instance("live", absl::Hours(1), absl::Now())->points.size(),
            static_cast<size_t>(rounds));
}

TEST_F(MonitorTest, AFailingTargetListSkipsTheRound) {
  Monitor monitor({.targets = [] { return absl::StatusOr<MonitorTargets>(absl::UnavailableError("store down")); }});
  monitor.ScrapeOnce();
  EXPECT_TRUE(monitor.history().Deployments().empty());
}

TEST_F(MonitorTest, TheIntervalFollowsTheConfigKey) {
  Monitor monitor({.interval = absl::Seconds(5), .targets = [this] { return Targets(); }});
  auto handler = MonitorIntervalHandler(monitor, absl::Seconds(5));
  ASSERT_TRUE(handler(nlohmann::json(2)).ok());
  EXPECT_EQ(monitor.history().interval(), absl::Seconds(2));
  EXPECT_FALSE(handler(nlohmann::json("fast")).ok());
  EXPECT_FALSE(handler(nlohmann::json(0)).ok());
  EXPECT_EQ(monitor.history().interval(), absl::Seconds(2));
  ASSERT_TRUE(handler(std::nullopt).ok());
  EXPECT_EQ(monitor.history().interval(), absl::Seconds(5));
}

TEST(ProcessUsageTest, ReadsThisProcessAndNotAMissingOne) {
  const std::optional<common::ProcessUsage> self = common::ReadProcessUsage(::getpid());
  ASSERT_TRUE(self.has_value());
  EXPECT_GT(self->rss_bytes, 1e6);
  EXPECT_GE(self->cpu_seconds, 0);
  EXPECT_FALSE(common::ReadProcessUsage(0).has_value());
  EXPECT_FALSE(common::ReadProcessUsage(1 << 30).has_value());  // above pid_max
}

TEST(GpuUsageReaderTest, OpensOnlyWhereNvmlIsInstalled) {
  std::unique_ptr<GpuUsageReader> reader = GpuUsageReader::Open();
  if (reader == nullptr) {
    GTEST_SKIP() << "no NVIDIA driver (libnvidia-ml.so.1): GPU values stay unknown";
  }
  EXPECT_GT(reader->device_count(), 0);
  for (const auto& [pid, usage] : reader->Read()) {
    EXPECT_GT(pid, 0);
    if (std::isfinite(usage.utilization_percent)) {
      EXPECT_GE(usage.utilization_percent, 0);
      EXPECT_LE(usage.utilization_percent, 100);
    }
  }
}

}  // namespace
}  // namespace triplane::control
