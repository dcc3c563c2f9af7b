// The autoscaler with real processes: `triplane serve` with local engines, a load of
// concurrent streamed chats that drives a deployment from 1 replica up and, once it
// eases, back down (instances drained with requests in flight) without a single failed
// request; and scaling to zero, where the gateway holds a request until an instance is
// up. Windows are short (API fields) so that the test does not wait minutes; nothing is
// asserted on timing, only bounded waits for states.

#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "common/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/serve_process.h"

namespace triplane {
namespace {

using namespace std::chrono_literals;
using common::HttpMethod;
using nlohmann::json;
using ::testing::HasSubstr;

class AutoscaleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("triplane-autoscale-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    // Room for three engines whatever the machine's cores (placement counts a core each).
    serve_ = testing::ServeProcess::Start(dir_, {"--no-demo", "--local-cores", "16"});
    ASSERT_NE(serve_, nullptr);
    const std::string model = (dir_ / "m.gguf").string();
    ASSERT_EQ(Run({TRIPLANE_BINARY, "gguf", "random", "--size", "15m", "--type", "q8_0", "--out", model}), 0);
    ASSERT_EQ(Cli({"models", "add", "m", model}), 0);
  }

  void TearDown() override {
    serve_.reset();
    std::filesystem::remove_all(dir_);
  }

  int Run(std::vector<std::string> argv) {
    static int count = 0;
    const std::string tag = std::to_string(++count);
    auto child = common::Subprocess::Spawn({.argv = std::move(argv),
                                            .stdout_path = (dir_ / ("run-" + tag + ".out")).string(),
                                            .stderr_path = (dir_ / ("run-" + tag + ".err")).string()});
    if (!child.ok()) return -1;
    auto status = (*child)->Wait(300s);
    if (!status || status->code != 0) {
      ADD_FAILURE() << testing::ReadWholeFile(dir_ / ("run-" + tag + ".err"));
    }
    return status ? status->code : -1;
  }

  int Cli(std::vector<std::string> args) {
    std::vector<std::string> argv = {TRIPLANE_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--server", serve_->url(), "--admin-key", serve_->admin_key()});
    return Run(std::move(argv));
  }

  json Deployment(const std::string& name) {
    common::HttpResponse response = serve_->Call(HttpMethod::kGet, "/admin/v1/deployments/" + name);
    EXPECT_EQ(response.status, 200) << response.body;
    return json::parse(response.body, nullptr, false);
  }

  // Polls (every 200 ms, up to ~5 minutes) until `done` holds for the deployment.
  bool WaitFor(const std::string& name, const std::function<bool(const json&)>& done) {
    for (int i = 0; i < 1500; ++i) {
      if (done(Deployment(name))) return true;
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "deployment " << name << " never got there: " << Deployment(name).dump();
    return false;
  }

  // The deployment's scaling events as "actor kind: message" lines, read from the store.
  std::vector<std::string> Events(const std::string& deployment) {
    std::vector<std::string> events;
    sqlite3* db = nullptr;
    const std::string path = (dir_ / "data" / "triplane.db").string();
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sqlite3_errmsg(db);
      sqlite3_close(db);
      return events;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* statement = nullptr;
    const char* sql = "SELECT actor, kind, message FROM deployment_events WHERE deployment = ? AND kind = 'scaled' ORDER BY id";
    if (sqlite3_prepare_v2(db, sql, -1, &statement, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(statement, 1, deployment.c_str(), -1, SQLITE_TRANSIENT);
      while (sqlite3_step(statement) == SQLITE_ROW) {
        auto text = [&](int column) { return std::string(reinterpret_cast<const char*>(sqlite3_column_text(statement, column))); };
        events.push_back(text(0) + " " + text(1) + ": " + text(2));
      }
    } else {
      ADD_FAILURE() << sqlite3_errmsg(db);
    }
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return events;
  }

  static size_t LiveInstances(const json& d) {
    size_t live = 0;
    for (const json& i : d["instances"]) live += i["state"] == "ready" || i["state"] == "starting";
    return live;
  }

  // One streamed chat of 24 tokens (through `url`, serve's when empty); "" when it came
  // back whole, else what was wrong.
  std::string StreamChat(common::HttpClient& client, const std::string& model, const std::string& url = "") {
    common::HttpClientRequest request{
        .method = HttpMethod::kPost,
        .url = (url.empty() ? serve_->url() : url) + "/v1/chat/completions",
        .body = json{{"model", model},
                     {"messages", {{{"role", "user"}, {"content", "count"}}}},
                     {"max_tokens", 24},
                     {"ignore_eos", true},
                     {"stream", true}}
                    .dump()};
    request.headers.Set("authorization", "Bearer " + serve_->admin_key());
    absl::StatusOr<common::HttpResponse> response = client.Send(request);
    if (!response.ok()) return std::string(response.status().message());
    if (response->status != 200) return std::to_string(response->status) + " " + response->body;
    if (response->body.find("\"finish_reason\":\"length\"") == std::string::npos ||
        response->body.find("data: [DONE]") == std::string::npos) {
      return "incomplete stream: " + response->body.substr(0, 2000);
    }
    return "";
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::ServeProcess> serve_;
};

// Clients streaming until told to stop; every answer is checked.
class Load {
 public:
  Load(int streams, std::function<std::string(common::HttpClient&)> one) : one_(std::move(one)) {
    for (int i = 0; i < streams; ++i) {
      threads_.emplace_back([this] {
        common::HttpClient client({.threads = 1});
        while (!stop_) {
          std::string error = one_(client);
          std::lock_guard lock(mu_);
          ++requests_;
          if (!error.empty()) errors_.push_back(std::move(error));
        }
      });
    }
  }
  ~Load() { Stop(); }

  // Lets each stream finish the request it is in, then joins.
  void Stop() {
    stop_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  std::vector<std::string> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  std::function<std::string(common::HttpClient&)> one_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  int requests_ = 0;
  std::vector<std::string> errors_;
};

TEST_F(AutoscaleTest, LoadScalesUpAndBackDownWithoutAFailedRequest) {
  ASSERT_EQ(Cli({"deploy", "auto", "--model", "m", "--threads", "1", "--wait", "--timeout", "240"}), 0);
  // Short windows; scale down as soon as the stable window allows.
  ASSERT_EQ(Cli({"autoscale", "auto", "--min", "1", "--max", "3", "--target", "2", "--stable-window", "6",
                 "--panic-window", "3", "--scale-down-cooldown", "0"}),
            0);
  json d = Deployment("auto");
  ASSERT_TRUE(d["autoscale"].is_object()) << d.dump();
  EXPECT_EQ(d["autoscale"]["metric"], "in_flight");
  EXPECT_EQ(d["autoscale"]["max_replicas"], 3);
  ASSERT_TRUE(serve_->WaitUntilAnswers("m"));

  auto one = [this](common::HttpClient& client) { return StreamChat(client, "m"); };
  {
    // Heavy: 8 streams against a target of 2 per replica.
    Load heavy(8, one);
    ASSERT_TRUE(WaitFor("auto", [](const json& d) {
      return d["replicas"].get<int>() > 1 && d["status"]["ready_replicas"].get<int>() > 1;
    }));
    // Light: one stream keeps going while the surplus replicas drain and stop.
    Load light(1, one);
    heavy.Stop();
    ASSERT_TRUE(WaitFor("auto", [](const json& d) {
      return d["replicas"] == 1 && LiveInstances(d) == 1 && d["instances"].size() == 1;
    }));
    light.Stop();
    EXPECT_GT(heavy.requests() + light.requests(), 0);
    EXPECT_THAT(heavy.errors(), ::testing::IsEmpty());
    EXPECT_THAT(light.errors(), ::testing::IsEmpty());
  }

  // Each decision is audited as the autoscaler's, and logged with its reason.
  common::HttpResponse audit = serve_->Call(HttpMethod::kGet, "/admin/v1/audit?actor=autoscaler");
  ASSERT_EQ(audit.status, 200);
  const json rows = json::parse(audit.body)["data"];
  EXPECT_GE(rows.size(), 2u) << audit.body;
  EXPECT_THAT(serve_->log(), HasSubstr("autoscaler: auto scaled 1 → "));
  // And recorded as deployment events with the reason: up from 1, and back down to 1.
  const std::vector<std::string> events = Events("auto");
  EXPECT_THAT(events, ::testing::Contains(::testing::AllOf(
                          ::testing::StartsWith("autoscaler scaled: scaled 1 → "), HasSubstr("target 2 per replica"))));
  EXPECT_THAT(events, ::testing::Contains(::testing::AllOf(::testing::StartsWith("autoscaler scaled: scaled "),
                                                           HasSubstr(" → 1: in-flight"))));
}

TEST_F(AutoscaleTest, ScaledToZeroTheGatewayHoldsARequestUntilAnInstanceIsUp) {
  ASSERT_EQ(Cli({"deploy", "zero", "--model", "m", "--threads", "1", "--wait", "--timeout", "240"}), 0);
  ASSERT_EQ(Cli({"autoscale", "zero", "--max", "1", "--scale-to-zero", "--stable-window", "3",
                 "--panic-window", "1", "--scale-down-cooldown", "0"}),
            0);
  EXPECT_TRUE(Deployment("zero")["autoscale"]["scale_to_zero"].get<bool>());
  // Idle: down to zero instances.
  ASSERT_TRUE(WaitFor("zero", [](const json& d) { return d["replicas"] == 0 && d["instances"].empty(); }));

  // One request: held while an instance starts, then answered in full.
  common::HttpClient client({.threads = 1});
  EXPECT_EQ(StreamChat(client, "m"), "");
  // (Idle again, it may already be going back to zero: only the first two events count.)
  const std::vector<std::string> events = Events("zero");
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0], "autoscaler scaled: scaled 1 → 0: no demand for 3 s");
  EXPECT_EQ(events[1], "autoscaler scaled: scaled 0 → 1: woken by a request");
}

TEST_F(AutoscaleTest, ASplitGatewayWakesADeploymentScaledToZero) {
  ASSERT_EQ(Cli({"deploy", "zero", "--model", "m", "--threads", "1", "--wait", "--timeout", "240"}), 0);
  ASSERT_EQ(Cli({"autoscale", "zero", "--min", "0", "--max", "1", "--stable-window", "3", "--panic-window", "1",
                 "--scale-down-cooldown", "0"}),
            0);
  ASSERT_TRUE(WaitFor("zero", [](const json& d) { return d["replicas"] == 0 && d["instances"].empty(); }));

  // `triplane gateway` following serve: it holds the request and wakes the deployment
  // through the admin API.
  const std::filesystem::path out = dir_ / "gateway.out", log = dir_ / "gateway.log";
  auto gateway = common::Subprocess::Spawn({.argv = {TRIPLANE_BINARY, "gateway", "--port", "0", "--control",
                                                     serve_->url(), "--admin-key", serve_->admin_key()},
                                            .stdout_path = out.string(),
                                            .stderr_path = log.string()});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  std::string url;
  for (int i = 0; i < 3000 && url.empty(); ++i) {
    const std::string text = testing::ReadWholeFile(out);
    if (text.find('\n') != std::string::npos) url = text.substr(0, text.find('\n'));
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(url.empty()) << testing::ReadWholeFile(log);
  common::HttpClient client({.threads = 1});
  EXPECT_EQ(StreamChat(client, "m", url), "");
  EXPECT_THAT(Events("zero"), ::testing::Contains("autoscaler scaled: scaled 0 → 1: woken by a request"));
  (*gateway)->Signal(SIGTERM);
  auto status = (*gateway)->Wait(60s);
  EXPECT_TRUE(status.has_value() && status->code == 0) << testing::ReadWholeFile(log);
}

}  // namespace
}  // namespace triplane
