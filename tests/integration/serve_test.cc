// `triplane serve` as a user runs it: a real process on a free port, probed over HTTP.

#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "common/http_client.h"
#include "common/json.h"
#include "common/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/engine_process.h"

namespace triplane {
namespace {

using namespace std::chrono_literals;
using common::HttpClient;
using common::Subprocess;
using ::testing::HasSubstr;

using testing::ReadWholeFile;

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("triplane-serve-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    log_ = dir_ / "serve.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Starts `triplane serve` on a free port; returns the port, or 0 on failure.
  int StartServe(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {TRIPLANE_BINARY, "serve",      "--port",
                                     "0",             "--log-format", "json",
                                     "--data-dir",    (dir_ / "data").string(), "--no-demo"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child = common::Subprocess::Spawn(
        {.argv = argv, .stdout_path = (dir_ / "serve.out").string(), .stderr_path = log_.string()});
    if (!child.ok()) return 0;
    serve_ = std::move(*child);
    static const std::regex kListening(R"(serving on http://127\.0\.0\.1:(\d+))");
    for (int i = 0; i < 1000; ++i) {
      std::smatch m;
      std::string log = ReadWholeFile(log_);
      if (std::regex_search(log, m, kListening)) return std::stoi(m[1]);
      if (serve_->Poll()) return 0;
      std::this_thread::sleep_for(10ms);
    }
    return 0;
  }

  std::filesystem::path dir_;
  std::filesystem::path log_;
  std::unique_ptr<Subprocess> serve_;
};

TEST_F(ServeTest, AnswersHealthAndMetricsThatPassPromtool) {
  int port = StartServe();
  ASSERT_GT(port, 0) << ReadWholeFile(log_);
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  HttpClient client;
  auto health = client.Send({.url = base + "/health"});
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);
  auto body = common::ParseJson(health->body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ((*body)["status"], "ready");

  auto missing = client.Send({.url = base + "/v1/nothing-here"});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);

  auto metrics = client.Send({.url = base + "/metrics"});
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->headers.Get("Content-Type").value_or(""), HasSubstr("text/plain"));
  EXPECT_THAT(metrics->body, HasSubstr("triplane_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} 1"));
  EXPECT_THAT(metrics->body, HasSubstr("triplane_build_info{"));
  EXPECT_THAT(metrics->body, HasSubstr("process_resident_memory_bytes "));

  auto metrics_file = dir_ / "metrics.txt";
  std::ofstream(metrics_file) << metrics->body;
  auto promtool = Subprocess::Spawn({.argv = {"/bin/sh", "-c", "promtool check metrics < " + metrics_file.string()},
                                     .stdout_path = (dir_ / "promtool.txt").string(),
                                     .stderr_path = (dir_ / "promtool.txt").string()});
  ASSERT_TRUE(promtool.ok());
  auto status = (*promtool)->Wait(60s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code, 0) << ReadWholeFile(dir_ / "promtool.txt");
  EXPECT_EQ(ReadWholeFile(dir_ / "promtool.txt"), "");

  // SIGTERM drains and exits cleanly.
  ASSERT_TRUE(serve_->Signal(SIGTERM));
  auto exit = serve_->Wait(30s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->code, 0) << exit->ToString();

  // Every log line is JSON; request lines carry the request id the client saw.
  std::istringstream lines(ReadWholeFile(log_));
  std::string line;
  bool saw_health = false;
  std::string health_id(health->headers.Get("x-request-id").value_or("?"));
  while (std::getline(lines, line)) {
    auto record = common::ParseJson(line);
    ASSERT_TRUE(record.ok()) << line;
    if (record->value("msg", "").find("GET /health 200") != std::string::npos) {
      EXPECT_EQ(record->value("request_id", ""), health_id);
      saw_health = true;
    }
  }
  EXPECT_TRUE(saw_health);
}

TEST_F(ServeTest, PortInUseIsAOneLineErrorAndNonZeroExit) {
  int port = StartServe();
  ASSERT_GT(port, 0) << ReadWholeFile(log_);
  auto second_log = dir_ / "second.log";
  auto second = Subprocess::Spawn({.argv = {TRIPLANE_BINARY, "serve", "--port", std::to_string(port),
                                            "--data-dir", (dir_ / "data2").string()},
                                   .stdout_path = second_log.string(),
                                   .stderr_path = second_log.string()});
  ASSERT_TRUE(second.ok());
  auto status = (*second)->Wait(30s);
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(status->code, 0);
  std::string output = ReadWholeFile(second_log);
  EXPECT_THAT(output, HasSubstr("cannot listen on 127.0.0.1:" + std::to_string(port)));
  EXPECT_EQ(std::count(output.begin(), output.end(), '\n'), 1) << output;
}

}  // namespace
}  // namespace triplane
