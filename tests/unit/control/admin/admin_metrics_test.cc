// GET /admin/v1/metrics/...: the monitor's series as the console reads them.

#include <cmath>

#include "unit/control/admin/admin_test_fixture.h"
#include "common/metrics.h"
#include "gtest/gtest.h"

namespace triplane::control {
namespace {

// A page as an engine renders it: one request of 0.3 s, 2 running.
std::shared_ptr<const ScrapedMetrics> EnginePage(int requests) {
  common::MetricsRegistry registry;
  auto& latency = registry.AddHistogram("triplane_e2e_request_latency_seconds", "Latency.", {}, {0.1, 0.5}).Get();
  for (int i = 0; i < requests; ++i) latency.Observe(0.3);
  registry.AddGauge("triplane_num_requests_running", "Running.").Get().Set(2);
  return std::make_shared<ScrapedMetrics>(ParsePrometheusText(registry.RenderText()));
}

class AdminMetricsTest : public AdminApiTest {
 protected:
  // Two rounds, 5 s apart and ending now, with 10 requests in between.
  void RecordTwoRounds() {
    const SeriesLabels demo{.deployment = "demo", .model = "demo", .version = "1"};
    SeriesLabels instance = demo;
    instance.instance = "demo-abc";
    now_ = absl::FromUnixMillis(absl::ToUnixMillis(absl::Now()));
    const absl::Time before = now_ - absl::Seconds(5);
    metrics_.Record(before, {demo}, {{.labels = instance, .time = before, .metrics = EnginePage(0)}});
    metrics_.Record(now_, {demo}, {{.labels = instance, .time = now_, .metrics = EnginePage(10)}});
  }

  absl::Time now_;
};

TEST_F(AdminMetricsTest, ListsDeploymentsWithTheirLatestPoint) {
  RecordTwoRounds();
  Response r = Get("/admin/v1/metrics/deployments");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["interval_seconds"], 5);
  ASSERT_EQ(r.body["data"].size(), 1u);
  const nlohmann::json& d = r.body["data"][0];
  EXPECT_EQ(d["deployment"], "demo");
  EXPECT_EQ(d["model"], "demo");
  EXPECT_EQ(d["version"], "1");
  EXPECT_EQ(d["instances"], 1);
  const nlohmann::json& latest = d["latest"];
  EXPECT_DOUBLE_EQ(latest["t"].get<double>(), static_cast<double>(absl::ToUnixMillis(now_)) / 1000);
  EXPECT_DOUBLE_EQ(latest["requests_per_second"].get<double>(), 2);
  EXPECT_DOUBLE_EQ(latest["latency_p50_seconds"].get<double>(), 0.3);
  EXPECT_EQ(latest["running"], 2);
  EXPECT_FALSE(latest.contains("up"));
  // Unknown values are null, never absent: the console reads one shape.
  for (const char* key : {"ttft_p50_seconds", "ttft_p99_seconds", "tpot_p50_seconds", "tokens_per_second",
                          "generation_tokens_per_second", "waiting", "kv_cache_usage", "cpu_percent",
                          "rss_bytes", "gpu_utilization_percent", "gpu_memory_bytes"}) {
    ASSERT_TRUE(latest.contains(key)) << key;
    EXPECT_TRUE(latest[key].is_null()) << key;
  }
}

TEST_F(AdminMetricsTest, ServesADeploymentsAndAnInstancesPointsWithinTheWindow) {
  RecordTwoRounds();
  Response d = Get("/admin/v1/metrics/deployments/demo");
  ASSERT_EQ(d.status, 200) << d.body;
  EXPECT_EQ(d.body["deployment"], "demo");
  EXPECT_EQ(d.body["version"], "1");
  EXPECT_EQ(d.body["interval_seconds"], 5);
  ASSERT_EQ(d.body["points"].size(), 2u);
  EXPECT_TRUE(d.body["points"][0]["requests_per_second"].is_null());  // the first round
  EXPECT_DOUBLE_EQ(d.body["points"][1]["requests_per_second"].get<double>(), 2);

  Response i = Get("/admin/v1/metrics/instances/demo-abc?window=3");
  ASSERT_EQ(i.status, 200) << i.body;
  EXPECT_EQ(i.body["instance"], "demo-abc");
  EXPECT_EQ(i.body["deployment"], "demo");
  ASSERT_EQ(i.body["points"].size(), 1u);  // the last 3 s hold the newer point only
  EXPECT_EQ(i.body["points"][0]["up"], 1);

  EXPECT_EQ(Get("/admin/v1/metrics/instances/demo-abc?window=0").status, 400);
  EXPECT_EQ(Get("/admin/v1/metrics/instances/demo-abc?window=soon").status, 400);
}

TEST_F(AdminMetricsTest, UnknownNamesAre404AndNewDeploymentsHaveNoPointsYet) {
  Response missing = Get("/admin/v1/metrics/deployments/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body["error"]["type"], "not_found_error");
  EXPECT_EQ(Get("/admin/v1/metrics/instances/nope").status, 404);

  AddVersion("m", "a");
  ASSERT_EQ(Post("/admin/v1/deployments", {{"name", "fresh"}, {"model", "m"}}).status, 201);
  Response fresh = Get("/admin/v1/metrics/deployments/fresh");
  ASSERT_EQ(fresh.status, 200) << fresh.body;
  EXPECT_EQ(fresh.body["model"], "m");
  EXPECT_EQ(fresh.body["points"], nlohmann::json::array());
}

TEST_F(AdminMetricsTest, NeedsAnAdminKey) {
  EXPECT_EQ(Send(common::HttpMethod::kGet, "/admin/v1/metrics/deployments", "", "").status, 401);
  EXPECT_EQ(Send(common::HttpMethod::kGet, "/admin/v1/metrics/deployments", "", user_key_).status, 403);
}

}  // namespace
}  // namespace triplane::control
