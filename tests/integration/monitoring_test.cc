// The monitoring center end to end: `triplane serve` with its demo engine serves chats,
// its admin API shows the requests as series, its /metrics re-exports the engine's series
// with deployment labels (valid for promtool), and a real Prometheus scraping it finds
// them.

#include <signal.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/http_client.h"
#include "common/json.h"
#include "common/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/prometheus_server.h"
#include "testing/server_process_util.h"

namespace triplane {
namespace {

using namespace std::chrono_literals;
using common::HttpClient;
using common::Subprocess;
using nlohmann::json;
using ::testing::HasSubstr;

using testing::ReadWholeFile;

class MonitoringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("triplane-monitoring-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }

  void TearDown() override {
    if (serve_ != nullptr) {
      serve_->Signal(SIGTERM);
      auto status = serve_->Wait(60s);
      EXPECT_TRUE(status.has_value() && status->code == 0) << ReadWholeFile(dir_ / "serve.log");
    }
    // No engine may outlive the test, whatever happened in it.
    for (int64_t pid : engine_pids_) {
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) == 0) ::kill(static_cast<pid_t>(pid), SIGKILL);
    }
    std::filesystem::remove_all(dir_);
  }

  // Starts `triplane serve` (demo model on) on a free port; waits for its URL line.
  void StartServe() {
    auto child = Subprocess::Spawn({.argv = {TRIPLANE_BINARY, "serve", "--port", "0", "--data-dir",
                                             (dir_ / "data").string(), "--drain-timeout", "10"},
                                    .stdout_path = (dir_ / "serve.out").string(),
                                    .stderr_path = (dir_ / "serve.log").string()});
    ASSERT_TRUE(child.ok()) << child.status();
    serve_ = std::move(*child);
    for (int i = 0; i < 3000; ++i) {
      std::istringstream lines(ReadWholeFile(dir_ / "serve.out"));
      std::string line;
      while (std::getline(lines, line)) {
        if (line.starts_with("http://")) {
          url_ = line;
          const std::string key = ReadWholeFile(dir_ / "data" / "admin.key");
          key_ = key.substr(0, key.find('\n'));
          return;
        }
      }
      ASSERT_FALSE(serve_->Poll().has_value()) << "serve exited: " << ReadWholeFile(dir_ / "serve.log");
      std::this_thread::sleep_for(10ms);
    }
    FAIL() << "serve did not start: " << ReadWholeFile(dir_ / "serve.log");
  }

  common::HttpResponse Call(common::HttpMethod method, const std::string& path, const json& body = nullptr) {
    common::HttpClientRequest request{.method = method, .url = url_ + path};
    if (!body.is_null()) request.body = body.dump();
    request.headers.Set("authorization", "Bearer " + key_);
    auto response = http_.Send(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : common::HttpResponse{.status = 0};
  }

  json GetJson(const std::string& path) {
    common::HttpResponse response = Call(common::HttpMethod::kGet, path);
    EXPECT_EQ(response.status, 200) << path << ": " << response.body;
    absl::StatusOr<json> parsed = common::ParseJson(response.body);
    return parsed.ok() ? *parsed : json();
  }

  // A chat to the demo model; false while its engine is starting (503).
  bool Chat() {
    const json request = {{"model", "demo"},
                          {"messages", {{{"role", "user"}, {"content", "How busy are you?"}}}},
                          {"max_tokens", 8}};
    common::HttpResponse response = Call(common::HttpMethod::kPost, "/v1/chat/completions", request);
    if (response.status != 503) {
      EXPECT_EQ(response.status, 200) << response.body;
    }
    return response.status == 200;
  }

  // Runs `command` with /bin/sh; its exit code (-1 when it did not run), and its stdout
  // and stderr in `output`.
  int Shell(const std::string& command, std::string* output) {
    const std::string path = (dir_ / "shell.txt").string();
    auto child = Subprocess::Spawn({.argv = {"/bin/sh", "-c", command}, .stdout_path = path, .stderr_path = path});
    if (!child.ok()) return -1;
    auto status = (*child)->Wait(60s);
    *output = ReadWholeFile(path);
    return status.has_value() ? status->code : -1;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Subprocess> serve_;
  std::string url_, key_;
  std::set<int64_t> engine_pids_;
  HttpClient http_;
};

TEST_F(MonitoringTest, SeriesReachTheAdminApiTheReExportAndARealPrometheus) {
  ASSERT_NO_FATAL_FAILURE(StartServe());
  // A scrape a second, through the config center.
  ASSERT_EQ(Call(common::HttpMethod::kPut, "/admin/v1/config/monitor.interval", {{"value", 1}}).status, 200);
  bool answered = false;
  for (int i = 0; i < 600 && !answered; ++i) {
    answered = Chat();
    if (!answered) std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(answered) << ReadWholeFile(dir_ / "serve.log");
  const json instances = GetJson("/admin/v1/instances?deployment=demo")["data"];
  ASSERT_EQ(instances.size(), 1u) << instances;
  const std::string instance = instances[0]["id"];
  engine_pids_.insert(instances[0].value("pid", int64_t{0}));

  // Chats until a deployment point shows requests (the first scrape of an instance has
  // no rate yet, and a point needs requests between two scrapes).
  json point;
  for (int i = 0; i < 600 && point.is_null(); ++i) {
    ASSERT_TRUE(Chat());
    const json series = GetJson("/admin/v1/metrics/deployments/demo?window=3600");
    ASSERT_EQ(series["deployment"], "demo") << series;
    for (const json& p : series["points"]) {
      if (p["requests_per_second"].is_number() && p["requests_per_second"].get<double>() > 0) point = p;
    }
    if (point.is_null()) std::this_thread::sleep_for(200ms);
  }
  ASSERT_FALSE(point.is_null()) << "no requests in the series; " << ReadWholeFile(dir_ / "serve.log");
  EXPECT_GT(point["tokens_per_second"].get<double>(), 0);
  EXPECT_GT(point["generation_tokens_per_second"].get<double>(), 0);
  EXPECT_GT(point["latency_p50_seconds"].get<double>(), 0);
  EXPECT_GE(point["latency_p99_seconds"].get<double>(), point["latency_p50_seconds"].get<double>());
  EXPECT_GT(point["ttft_p50_seconds"].get<double>(), 0);
  EXPECT_GT(point["rss_bytes"].get<double>(), 1e6);
  EXPECT_TRUE(point["kv_cache_usage"].is_number());
  EXPECT_TRUE(point["gpu_memory_bytes"].is_null());  // the demo engine runs on the CPU

  const json list = GetJson("/admin/v1/metrics/deployments");
  EXPECT_EQ(list["interval_seconds"], 1);
  ASSERT_EQ(list["data"].size(), 1u) << list;
  EXPECT_EQ(list["data"][0]["deployment"], "demo");
  EXPECT_EQ(list["data"][0]["model"], "demo");
  EXPECT_EQ(list["data"][0]["version"], "1");
  EXPECT_EQ(list["data"][0]["instances"], 1);

  const json mine = GetJson("/admin/v1/metrics/instances/" + instance);
  EXPECT_EQ(mine["instance"], instance);
  ASSERT_FALSE(mine["points"].empty());
  EXPECT_EQ(mine["points"].back()["up"], 1);
  EXPECT_TRUE(mine["points"].back()["cpu_percent"].is_number());
  EXPECT_EQ(Call(common::HttpMethod::kGet, "/admin/v1/metrics/deployments/nope").status, 404);

  // serve's own /metrics re-exports the engine's series with deployment labels.
  common::HttpResponse metrics = Call(common::HttpMethod::kGet, "/metrics");
  ASSERT_EQ(metrics.status, 200);
  const std::string labels =
      "{deployment=\"demo\",model=\"demo\",version=\"1\",instance=\"" + instance + "\"}";
  EXPECT_THAT(metrics.body, HasSubstr("triplane_num_requests_running" + labels));
  EXPECT_THAT(metrics.body, HasSubstr("triplane_instance_up" + labels + " 1"));
  EXPECT_THAT(metrics.body, HasSubstr("triplane_http_requests_total{"));  // serve's own, once
  EXPECT_EQ(metrics.body.find("# TYPE triplane_http_requests_total"),
            metrics.body.rfind("# TYPE triplane_http_requests_total"));
  std::ofstream(dir_ / "metrics.txt") << metrics.body;
  std::string lint;
  EXPECT_EQ(Shell("/usr/bin/promtool check metrics < " + (dir_ / "metrics.txt").string(), &lint), 0) << lint;
  EXPECT_EQ(lint, "");

  // A real Prometheus scraping serve stores the series under the same labels.
  const std::string target = url_.substr(std::string("http://").size());
  absl::StatusOr<std::unique_ptr<testing::PrometheusServer>> prometheus =
      testing::PrometheusServer::Start(target);
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();
  json result;
  for (int i = 0; i < 600 && (result.is_null() || result.empty()); ++i) {
    absl::StatusOr<json> answer = (*prometheus)->Query("triplane_num_requests_running{deployment=\"demo\"}");
    ASSERT_TRUE(answer.ok()) << answer.status();
    result = *answer;
    if (result.empty()) std::this_thread::sleep_for(200ms);
  }
  ASSERT_EQ(result.size(), 1u) << result << (*prometheus)->LogTail();
  EXPECT_EQ(result[0]["metric"]["model"], "demo");
  EXPECT_EQ(result[0]["metric"]["version"], "1");
  EXPECT_EQ(result[0]["metric"]["instance"], instance);
  EXPECT_EQ(result[0]["metric"]["job"], "triplane");
  absl::StatusOr<json> tokens =
      (*prometheus)->Query("sum by (deployment) (triplane_generation_tokens_total{deployment=\"demo\"})");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), 1u) << *tokens;
  EXPECT_GT(std::stod((*tokens)[0]["value"][1].get<std::string>()), 0);

  // The shipped dashboard's queries are valid PromQL with its variables filled in, and the
  // shipped scrape configuration is valid.
  const std::filesystem::path deploy = std::filesystem::path(TRIPLANE_SOURCE_DIR) / "deploy";
  absl::StatusOr<json> dashboard = common::ParseJson(ReadWholeFile(deploy / "grafana" / "triplane-dashboard.json"));
  ASSERT_TRUE(dashboard.ok()) << dashboard.status();
  ASSERT_FALSE((*dashboard)["panels"].empty());
  for (const json& panel : (*dashboard)["panels"]) {
    for (const json& query : panel["targets"]) {
      std::string expr = query["expr"];
      for (auto [variable, value] : {std::pair{"$deployment", "demo"}, std::pair{"$__rate_interval", "1m"}}) {
        for (size_t at; (at = expr.find(variable)) != std::string::npos;) expr.replace(at, std::strlen(variable), value);
      }
      EXPECT_TRUE((*prometheus)->Query(expr).ok()) << panel["title"] << ": " << expr;
    }
  }
  std::string checked;
  EXPECT_EQ(Shell("/usr/bin/promtool check config " + (deploy / "prometheus.yml").string(), &checked), 0)
      << checked;
  (*prometheus)->Stop();
}

}  // namespace
}  // namespace triplane
