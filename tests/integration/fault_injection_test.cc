// Faults with real processes around `triplane serve`: Redis gone under the limits,
// PostgreSQL stopped and restarted under the control plane, serve itself killed with
// SIGKILL under traffic, and the data directory's disk filling up. Each test checks what
// docs/reliability.md promises: clear errors while the fault lasts, recovery without a
// restart of serve once it is over, and a usage ledger with no row twice or half written.

#include <signal.h>
#include <sys/mount.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/control_plane_fixture.h"
#include "testing/postgres_server.h"
#include "testing/redis_server.h"

namespace triplane {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ReadWholeFile;
using ::testing::HasSubstr;

class FaultTest : public testing::ControlPlaneTest {
 protected:
  // A completion for `key` carrying `request_id` (x-request-id names its ledger row).
  common::HttpResponse Complete(const std::string& key, const std::string& request_id) {
    auto response = http_.Send(CompletionRequest(key, request_id));
    return response.ok() ? *response : common::HttpResponse{.status = 0};
  }

  common::HttpClientRequest CompletionRequest(const std::string& key, const std::string& request_id) const {
    common::HttpClientRequest request{
        .method = common::HttpMethod::kPost,
        .url = url_ + "/v1/completions",
        .body = json({{"model", "demo"}, {"prompt", "a"}, {"max_tokens", 4}, {"ignore_eos", true}}).dump()};
    request.headers.Set("authorization", "Bearer " + key);
    request.headers.Set("x-request-id", request_id);
    return request;
  }

  // Every ledger row, by request id (a test fails on a request id seen twice).
  std::map<std::string, json> LedgerRows() {
    std::map<std::string, json> rows;
    common::HttpClientRequest request{.url = url_ + "/admin/v1/usage/records?limit=100000"};
    request.headers.Set("authorization", "Bearer " + AdminKey());
    auto response = http_.Send(request);
    EXPECT_TRUE(response.ok() && response->status == 200) << (response.ok() ? response->body : "");
    if (!response.ok() || response->status != 200) return rows;
    const json page = json::parse(response->body);
    for (const json& row : page["data"]) {
      const std::string id = row.value("request_id", "");
      EXPECT_TRUE(rows.emplace(id, row).second) << "request " << id << " is in the ledger twice";
    }
    return rows;
  }

  // Polls the ledger until every id in `ids` has its row (the recorder writes batches).
  std::map<std::string, json> WaitForRows(const std::vector<std::string>& ids) {
    std::map<std::string, json> rows;
    for (int i = 0; i < 300; ++i) {
      rows = LedgerRows();
      bool all = true;
      for (const std::string& id : ids) all = all && rows.contains(id);
      if (all) return rows;
      std::this_thread::sleep_for(100ms);
    }
    std::string seen;
    for (const auto& [id, row] : rows) seen += " " + id;
    ADD_FAILURE() << "usage rows missing after 30 s; the ledger has" << seen;
    return rows;
  }

  // The error object of an OpenAI-style error body (a test failure when it is not one).
  static json ErrorOf(const common::HttpResponse& response) {
    const json body = json::parse(response.body, nullptr, false);
    EXPECT_TRUE(body.is_object() && body.contains("error") && body["error"].contains("message"))
        << response.status << " " << response.body;
    return body.is_object() && body.contains("error") ? body["error"] : json();
  }

  // Sends `request` every 100 ms, up to 30 s, until it is answered 200 or 201; the last status.
  int SendUntilAccepted(const common::HttpClientRequest& request) {
    int status = 0;
    for (int i = 0; i < 300 && status != 201 && status != 200; ++i) {
      auto response = http_.Send(request);
      status = response.ok() ? response->status : 0;
      if (status != 201 && status != 200) std::this_thread::sleep_for(100ms);
    }
    return status;
  }

  int Health() {
    auto response = http_.Send({.url = url_ + "/health"});
    return response.ok() ? response->status : 0;
  }
};

TEST_F(FaultTest, RedisDownRefusesOrAllowsAsConfiguredAndRecovers) {
  auto redis = testing::RedisServer::Start();
  ASSERT_TRUE(redis.ok()) << redis.status();
  ASSERT_NO_FATAL_FAILURE(StartServe({"--limits", (*redis)->Url()}));
  ChatUntilAnswered("demo");
  json user = CliJson({"keys", "create", "limited"});
  const std::string key = user["key"];
  ASSERT_EQ(Cli({"config", "set", "limits.key." + user["id"].get<std::string>(),
                 "{\"requests_per_minute\": 1000}"}).code, 0);
  ASSERT_EQ(Complete(key, "redis-up").status, 200);

  // Fail closed (the default): 503 with a clear error, serve itself stays up.
  (*redis)->Stop();
  common::HttpResponse refused = Complete(key, "redis-down");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_THAT(ErrorOf(refused).value("message", ""), HasSubstr("limits cannot be checked"));
  EXPECT_EQ(Health(), 200);
  EXPECT_EQ(Cli({"keys", "ls"}).code, 0);  // the admin API does not need Redis

  // Redis back (empty): requests are counted again, without restarting serve.
  ASSERT_TRUE((*redis)->StartAgain().ok());
  int status = 0;
  for (int i = 0; i < 300 && status != 200; ++i) {
    status = Complete(key, fmt::format("redis-back-{}", i)).status;
    if (status != 200) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status, 200);

  // Fail open: the same outage lets requests through uncounted.
  StopServe(SIGTERM);
  ASSERT_NO_FATAL_FAILURE(StartServe({"--limits", (*redis)->Url(), "--limits-fail-open"}));
  ChatUntilAnswered("demo");
  (*redis)->Stop();
  EXPECT_EQ(Complete(key, "redis-down-open").status, 200);
  EXPECT_THAT(ReadWholeFile(serve_log_), HasSubstr("limits"));
}

TEST_F(FaultTest, ServeOnPostgreSqlRidesOutADatabaseOutage) {
  // A server of its own: the test stops and restarts it.
  auto postgres = testing::PostgresServer::Start();
  ASSERT_TRUE(postgres.ok()) << postgres.status();
  absl::StatusOr<std::string> store = (*postgres)->CreateDatabase("faults");
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_NO_FATAL_FAILURE(StartServe({"--store", *store}));
  ChatUntilAnswered("demo");
  json before = CliJson({"keys", "create", "before"});
  ASSERT_EQ(Complete(before["key"], "pg-before").status, 200);

  // Down: admin writes fail with a clear error (never a crash); serve answers /health.
  ASSERT_TRUE((*postgres)->Stop().ok());
  common::HttpClientRequest create{.method = common::HttpMethod::kPost,
                                   .url = url_ + "/admin/v1/keys",
                                   .body = R"({"name": "during"})"};
  create.headers.Set("authorization", "Bearer " + AdminKey());
  auto during = http_.Send(create);
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_GE(during->status, 500) << during->body;
  EXPECT_FALSE(ErrorOf(*during).value("message", "").empty());
  EXPECT_EQ(Health(), 200);

  // Back: the control plane reconnects on its own.
  ASSERT_TRUE((*postgres)->StartAgain().ok());
  int status = SendUntilAccepted(create);
  ASSERT_TRUE(status == 201 || status == 200) << status;
  json after = CliJson({"keys", "create", "after"});
  ASSERT_EQ(Complete(after["key"], "pg-after").status, 200);
  std::map<std::string, json> rows = WaitForRows({"pg-before", "pg-after"});
  EXPECT_EQ(rows["pg-after"].value("completion_tokens", 0), 4);

  // A restart of the database while serve is busy is ridden out the same way.
  ASSERT_TRUE((*postgres)->Restart().ok());
  status = 0;
  for (int i = 0; i < 300 && status != 200; ++i) {
    status = Complete(after["key"], fmt::format("pg-restart-{}", i)).status;
    if (status != 200) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status, 200);
  EXPECT_EQ(Cli({"audit", "verify"}).code, 0);
}

TEST_F(FaultTest, KillNineUnderTrafficLeavesTheLedgerAndAuditConsistent) {
  ASSERT_NO_FATAL_FAILURE(StartServe());
  ChatUntilAnswered("demo");
  json user = CliJson({"keys", "create", "traffic"});
  const std::string key = user["key"];

  // Four clients send completions back to back; each remembers what it was answered.
  std::atomic<bool> stop{false};
  std::atomic<int> answered_count{0};
  std::mutex mu;
  std::map<std::string, int> answered;  // request id -> completion tokens the client saw
  std::set<std::string> sent;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      common::HttpClient http;
      for (int n = 0; !stop.load(); ++n) {
        const std::string id = fmt::format("kill9-{}-{}", c, n);
        {
          std::lock_guard lock(mu);
          sent.insert(id);
        }
        auto response = http.Send(CompletionRequest(key, id));
        if (!response.ok() || response->status != 200) continue;
        const json body = json::parse(response->body, nullptr, false);
        if (!body.is_object() || !body.contains("usage")) continue;
        std::lock_guard lock(mu);
        answered[id] = body["usage"].value("completion_tokens", -1);
        ++answered_count;
      }
    });
  }
  for (int i = 0; i < 600 && answered_count.load() < 100; ++i) std::this_thread::sleep_for(50ms);
  ASSERT_GE(answered_count.load(), 100);
  StopServe(SIGKILL);  // mid-traffic: requests in flight die with it
  stop = true;
  for (std::thread& t : clients) t.join();

  // Restarted on the same data dir: it adopts the engines and serves again.
  ASSERT_NO_FATAL_FAILURE(StartServe());
  ChatUntilAnswered("demo");
  std::vector<std::string> after_ids;
  for (int i = 0; i < 10; ++i) {
    after_ids.push_back(fmt::format("after-restart-{}", i));
    ASSERT_EQ(Complete(key, after_ids.back()).status, 200);
  }
  std::map<std::string, json> rows = WaitForRows(after_ids);

  // No row twice (LedgerRows checks), none for a request nobody sent, every row whole,
  // and every recorded answer with the tokens its client saw.
  int recorded = 0;
  for (const auto& [id, row] : rows) {
    if (!id.starts_with("kill9-")) continue;
    EXPECT_TRUE(sent.contains(id)) << id;
    EXPECT_EQ(row.value("model", ""), "demo") << row.dump();
    EXPECT_FALSE(row.value("key_id", "").empty()) << row.dump();
    if (auto it = answered.find(id); it != answered.end()) {
      ++recorded;
      EXPECT_EQ(row.value("status", 0), 200) << row.dump();
      EXPECT_EQ(row.value("completion_tokens", -1), it->second) << row.dump();
    }
  }
  // The recorder commits whatever is queued as soon as it can (group commit): a SIGKILL
  // can lose the rows of the transaction in progress, a few at most, never a written one
  // (docs/reliability.md). The figure for the docs:
  const size_t lost = answered.size() - static_cast<size_t>(recorded);
  std::printf("[ figures ] kill -9 under traffic: %zu answered, %d recorded, %zu lost with the last transaction\n",
              answered.size(), recorded, lost);
  EXPECT_LE(lost, 12u);
  for (const std::string& id : after_ids) EXPECT_EQ(rows[id].value("completion_tokens", 0), 4);
  EXPECT_EQ(Cli({"audit", "verify"}).code, 0);
}

class DiskFullTest : public FaultTest {
 protected:
  void TearDown() override {
    StopServe(SIGTERM);
    for (int64_t pid : engine_pids_) {
      if (testing::Alive(pid)) ::kill(static_cast<pid_t>(pid), SIGKILL);
    }
    if (mounted_) {
      // Engines of a killed serve may still hold files there for a moment.
      for (int i = 0; i < 100 && ::umount2(data_dir_.c_str(), 0) != 0; ++i) std::this_thread::sleep_for(100ms);
    }
    FaultTest::TearDown();
  }

  // Writes 1 MiB chunks to `path` until the file system says no; the bytes written.
  static int64_t Fill(const std::filesystem::path& path) {
    std::ofstream out(path, std::ios::binary);
    const std::string chunk(1 << 20, 'x');
    int64_t written = 0;
    while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) {
      out.flush();
      if (!out) break;
      written += static_cast<int64_t>(chunk.size());
    }
    // Top up the last partial megabyte byte-wise so nothing at all is left.
    out.clear();
    const std::string small(4096, 'x');
    while (out.write(small.data(), static_cast<std::streamsize>(small.size())) && out.flush()) {
      written += static_cast<int64_t>(small.size());
    }
    return written;
  }

  bool mounted_ = false;
};

TEST_F(DiskFullTest, AFullDiskGivesClearErrorsAndServeRecoversWhenSpaceReturns) {
  std::filesystem::create_directories(data_dir_);
  if (::mount("tmpfs", data_dir_.c_str(), "tmpfs", 0, "size=48m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs for the data dir (" << std::strerror(errno)
                 << "): this test needs root or CAP_SYS_ADMIN";
  }
  mounted_ = true;
  ASSERT_NO_FATAL_FAILURE(StartServe());
  ChatUntilAnswered("demo");
  json user = CliJson({"keys", "create", "before-full"});
  const std::string key = user["key"];
  ASSERT_EQ(Complete(key, "disk-before").status, 200);
  Instances("demo");  // TearDown kills them should serve not stop them

  const std::filesystem::path filler = data_dir_ / "filler";
  ASSERT_GT(Fill(filler), 0);

  // Full: an admin write is refused with 507 and a clear message, and serve stays up.
  common::HttpClientRequest create{.method = common::HttpMethod::kPost,
                                   .url = url_ + "/admin/v1/keys",
                                   .body = R"({"name": "during-full"})"};
  create.headers.Set("authorization", "Bearer " + AdminKey());
  auto refused = http_.Send(create);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->status, 507) << refused->body;
  EXPECT_FALSE(ErrorOf(*refused).value("message", "").empty());
  EXPECT_EQ(Health(), 200);

  // Serving goes on; the ledger rows wait in the recorder's queue and are not lost.
  std::vector<std::string> during_ids;
  for (int i = 0; i < 5; ++i) {
    during_ids.push_back(fmt::format("disk-full-{}", i));
    EXPECT_EQ(Complete(key, during_ids.back()).status, 200);
  }

  // Space returns: writes succeed again without a restart and the queued rows land.
  std::filesystem::remove(filler);
  const int status = SendUntilAccepted(create);
  EXPECT_TRUE(status == 201 || status == 200) << status;
  std::vector<std::string> expected = during_ids;
  expected.push_back("disk-before");
  std::map<std::string, json> rows = WaitForRows(expected);
  for (const std::string& id : during_ids) EXPECT_EQ(rows[id].value("completion_tokens", 0), 4) << id;
  EXPECT_EQ(Cli({"audit", "verify"}).code, 0);
}

}  // namespace
}  // namespace triplane
