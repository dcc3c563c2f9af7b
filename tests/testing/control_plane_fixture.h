#pragma once

// The fixture of the management-plane tests: a real `triplane serve` on a temporary data
// dir (started, stopped with a signal, restarted on the same dir), the admin CLI against
// it, public API calls, split gateways and generated models. Every engine a test saw is
// killed in TearDown, whatever happened.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "common/subprocess.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/engine_process.h"

namespace triplane::testing {

using namespace std::chrono_literals;

// Running, not a zombie waiting for a reaper (an engine whose serve was killed belongs
// to init, or to nobody that reaps, in a container).
inline bool Alive(int64_t pid) {
  if (pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) != 0) return false;
  const std::string stat = ReadWholeFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

class ControlPlaneTest : public ::testing::Test {
 public:
  using json = nlohmann::json;
  using HttpClient = common::HttpClient;
  using Subprocess = common::Subprocess;

 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("triplane-control-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    data_dir_ = dir_ / "data";
  }

  void TearDown() override {
    StopServe(SIGTERM);
    // No engine may outlive a test, whatever happened in it.
    for (int64_t pid : engine_pids_) {
      if (Alive(pid)) ::kill(static_cast<pid_t>(pid), SIGKILL);
    }
    std::filesystem::remove_all(dir_);
  }

  // Starts `triplane serve` on a free port and waits for its URL line.
  void StartServe(std::vector<std::string> extra = {}) {
    static int count = 0;
    const std::filesystem::path out = dir_ / ("serve-" + std::to_string(++count) + ".out");
    serve_log_ = dir_ / ("serve-" + std::to_string(count) + ".log");
    std::vector<std::string> argv = {TRIPLANE_BINARY, "serve", "--port", "0", "--data-dir",
                                     data_dir_.string(), "--drain-timeout", "10"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child = Subprocess::Spawn({.argv = argv, .stdout_path = out.string(), .stderr_path = serve_log_.string()});
    ASSERT_TRUE(child.ok()) << child.status();
    serve_ = std::move(*child);
    for (int i = 0; i < 3000; ++i) {
      std::istringstream lines(ReadWholeFile(out));
      std::string line;
      while (std::getline(lines, line)) {
        if (line.starts_with("Admin key")) printed_key_ = line.substr(line.rfind(' ') + 1);
        if (line.starts_with("http://")) {
          url_ = line;
          return;
        }
      }
      ASSERT_FALSE(serve_->Poll().has_value()) << "serve exited: " << ReadWholeFile(serve_log_);
      std::this_thread::sleep_for(10ms);
    }
    FAIL() << "serve did not start: " << ReadWholeFile(serve_log_);
  }

  void StopServe(int signal) {
    if (serve_ == nullptr) return;
    serve_->Signal(signal);
    auto status = serve_->Wait(60s);
    EXPECT_TRUE(status.has_value());
    if (signal == SIGTERM && status.has_value()) {
      EXPECT_EQ(status->code, 0) << ReadWholeFile(serve_log_);
    }
    serve_.reset();
  }

  std::string AdminKey() const { return ReadWholeFile(data_dir_ / "admin.key").substr(0, ReadWholeFile(data_dir_ / "admin.key").find('\n')); }

  CliResult Cli(std::vector<std::string> args) {
    static int count = 0;
    const std::string tag = std::to_string(++count);
    const std::filesystem::path out = dir_ / ("cli-" + tag + ".out"), err = dir_ / ("cli-" + tag + ".err");
    std::vector<std::string> argv = {TRIPLANE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--server", url_, "--data-dir", data_dir_.string()});
    auto child = Subprocess::Spawn({.argv = argv, .stdout_path = out.string(), .stderr_path = err.string()});
    if (!child.ok()) return {};
    auto status = (*child)->Wait(300s);
    return {status ? status->code : -1, ReadWholeFile(out), ReadWholeFile(err)};
  }

  json CliJson(std::vector<std::string> args) {
    args.push_back("--json");
    CliResult r = Cli(args);
    EXPECT_EQ(r.code, 0) << r.err;
    json parsed = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << r.out;
    return parsed;
  }

  // A public API call with `key` (the admin key when empty).
  common::HttpResponse Post(const std::string& path, const json& body, std::string key = "") {
    common::HttpClientRequest request{.method = common::HttpMethod::kPost, .url = url_ + path, .body = body.dump()};
    request.headers.Set("authorization", "Bearer " + (key.empty() ? AdminKey() : key));
    auto response = http_.Send(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : common::HttpResponse{.status = 0};
  }

  // Polls until a chat request to `model` is answered (engines take a moment to start).
  json ChatUntilAnswered(const std::string& model) {
    const json request = {{"model", model}, {"messages", {{{"role", "user"}, {"content", "你好 🙂"}}}}, {"max_tokens", 8}};
    for (int i = 0; i < 600; ++i) {
      common::HttpResponse response = Post("/v1/chat/completions", request);
      if (response.status == 200) return json::parse(response.body);
      EXPECT_EQ(response.status, 503) << response.body;
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "no answer from " << model;
    return {};
  }

  // The deployment's instances (ps --json), remembering every engine pid for TearDown.
  json Instances(const std::string& deployment) {
    json d = CliJson({"ps", deployment});
    for (const json& i : d["instances"]) engine_pids_.insert(i.value("pid", int64_t{0}));
    return d["instances"];
  }

  // Starts `triplane gateway` following this serve; returns its URL ("" on failure).
  struct SplitGateway {
    std::unique_ptr<Subprocess> process;
    std::string url;
    std::filesystem::path log;
  };
  SplitGateway StartGateway(std::vector<std::string> extra = {}) {
    static int count = 0;
    const std::string tag = std::to_string(++count);
    SplitGateway gateway{.log = dir_ / ("gateway-" + tag + ".log")};
    const std::filesystem::path out = dir_ / ("gateway-" + tag + ".out");
    std::vector<std::string> argv = {TRIPLANE_BINARY, "gateway", "--port", "0", "--control", url_,
                                     "--admin-key", AdminKey()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child = Subprocess::Spawn({.argv = argv, .stdout_path = out.string(), .stderr_path = gateway.log.string()});
    EXPECT_TRUE(child.ok());
    if (!child.ok()) return gateway;
    gateway.process = std::move(*child);
    for (int i = 0; i < 3000 && gateway.url.empty(); ++i) {
      const std::string text = ReadWholeFile(out);
      if (text.find('\n') != std::string::npos) gateway.url = text.substr(0, text.find('\n'));
      std::this_thread::sleep_for(10ms);
    }
    EXPECT_FALSE(gateway.url.empty()) << ReadWholeFile(gateway.log);
    return gateway;
  }

  std::string WriteModel(const std::string& name) {
    const std::string path = (dir_ / name).string();
    auto child = Subprocess::Spawn({.argv = {TRIPLANE_BINARY, "gguf", "random", "--size", "tiny", "--type", "q8_0", "--out", path}});
    EXPECT_TRUE(child.ok());
    auto status = (*child)->Wait(120s);
    EXPECT_TRUE(status && status->ok());
    return path;
  }

  std::filesystem::path dir_, data_dir_, serve_log_;
  std::unique_ptr<Subprocess> serve_;
  std::string url_, printed_key_;
  std::set<int64_t> engine_pids_;
  HttpClient http_;
};

}  // namespace triplane::testing
