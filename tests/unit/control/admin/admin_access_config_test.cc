// Admin API: config center and watches, audit log, keys and teams.

#include <sqlite3.h>

#include <future>
#include <thread>

#include "common/sha256.h"
#include "gmock/gmock.h"
#include "unit/control/admin/admin_test_fixture.h"

namespace triplane::control {
namespace {

using common::HttpMethod;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

// ---- Config ----

TEST_F(AdminApiTest, ConfigEntriesCanBeSetReadAndDeleted) {
  Response set = Put("/admin/v1/config/limits/default", {{"value", {{"rpm", 60}}}});
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(set.body["key"], "limits/default");
  EXPECT_EQ(set.body["value"]["rpm"], 60);
  EXPECT_EQ(set.body["revision"], 1);
  EXPECT_EQ(set.body["updated_by"], "key-admin");
  ASSERT_EQ(Put("/admin/v1/config/other", {{"value", "x"}}).status, 200);

  EXPECT_EQ(Get("/admin/v1/config/limits/default").body["value"]["rpm"], 60);
  Response listed = Get("/admin/v1/config?prefix=limits");
  EXPECT_EQ(listed.body["revision"], 2);
  ASSERT_EQ(listed.body["data"].size(), 1u);
  EXPECT_EQ(listed.body["data"][0]["key"], "limits/default");

  Response deleted = Delete("/admin/v1/config/limits/default");
  EXPECT_EQ(deleted.body, (json{{"deleted", true}, {"revision", 3}}));
  EXPECT_EQ(Get("/admin/v1/config/limits/default").status, 404);
  EXPECT_EQ(Put("/admin/v1/config/x", json::object()).body["error"]["param"], "value");
  EXPECT_EQ(Put("/admin/v1/config/bad%20key", {{"value", 1}}).status, 400);
}

TEST_F(AdminApiTest, AWatchReturnsPromptlyAfterASet) {
  ASSERT_EQ(Put("/admin/v1/config/a", {{"value", 1}}).status, 200);
  auto watch = std::async(std::launch::async, [this] {
    const auto start = Clock::now();
    Response r = Get("/admin/v1/config/watch?since=1&timeout=50");
    return std::make_pair(r, Clock::now() - start);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let it wait (not required)
  ASSERT_EQ(Put("/admin/v1/config/b", {{"value", 2}}).status, 200);
  const auto [r, elapsed] = watch.get();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["revision"], 2);
  EXPECT_EQ(r.body["reset"], false);
  ASSERT_EQ(r.body["changes"].size(), 1u);
  EXPECT_EQ(r.body["changes"][0],
            (json{{"key", "b"}, {"value", 2}, {"deleted", false}, {"revision", 2}}));
  EXPECT_LT(elapsed, std::chrono::seconds(30));  // far below the 50 s timeout

  ASSERT_EQ(Delete("/admin/v1/config/a").status, 200);
  Response deleted = Get("/admin/v1/config/watch?since=2&timeout=5");
  EXPECT_EQ(deleted.body["changes"][0]["deleted"], true);
  EXPECT_EQ(deleted.body["changes"][0]["value"], nullptr);
}

TEST_F(AdminApiTest, AWatchTimesOutWithNoChangesAndResetsWhenAhead) {
  ASSERT_EQ(Put("/admin/v1/config/a", {{"value", 1}}).status, 200);
  Response quiet = Get("/admin/v1/config/watch?since=1&timeout=1");
  ASSERT_EQ(quiet.status, 200);
  EXPECT_EQ(quiet.body, (json{{"revision", 1}, {"reset", false}, {"changes", json::array()}}));

  Response ahead = Get("/admin/v1/config/watch?since=99&timeout=30");
  ASSERT_EQ(ahead.status, 200);
  EXPECT_EQ(ahead.body["reset"], true);
  EXPECT_EQ(ahead.body["revision"], 1);
  ASSERT_EQ(ahead.body["data"].size(), 1u);
  EXPECT_EQ(ahead.body["data"][0]["key"], "a");

  EXPECT_EQ(Get("/admin/v1/config/watch?since=abc").body["error"]["param"], "since");
  EXPECT_EQ(Send(HttpMethod::kGet, "/admin/v1/config/watch?since=0", "", user_key_).status, 403);
}

TEST_F(AdminApiTest, WatchesBeyondTheLimitGet503) {
  std::vector<std::future<Response>> watches;
  for (int i = 0; i < 6; ++i) {  // max_watches is 4
    watches.push_back(std::async(
        std::launch::async, [this] { return Get("/admin/v1/config/watch?since=0&timeout=50"); }));
  }
  // The two refused ones answer at once; by then the other four are waiting.
  std::vector<Response> refused;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (refused.size() < 2 && Clock::now() < deadline) {
    for (auto& w : watches) {
      if (w.valid() && w.wait_for(std::chrono::milliseconds(5)) == std::future_status::ready) {
        refused.push_back(w.get());
      }
    }
  }
  ASSERT_EQ(refused.size(), 2u);
  for (const Response& r : refused) {
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body["error"]["type"], "service_unavailable_error");
  }
  ASSERT_EQ(Put("/admin/v1/config/wake", {{"value", true}}).status, 200);
  for (auto& w : watches) {
    if (!w.valid()) continue;  // one of the refused
    EXPECT_EQ(w.get().body["revision"], 1);
  }
}

TEST_F(AdminApiTest, DestroyingTheApiEndsOpenWatchesPromptly) {
  auto watch = std::async(std::launch::async,
                          [this] { return Get("/admin/v1/config/watch?since=0&timeout=60"); });
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (server_->active_exchanges() == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // into the wait
  const auto start = Clock::now();
  api_.reset();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(20));
  const Response r = watch.get();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body["changes"], json::array());
}

// ---- Audit ----

TEST_F(AdminApiTest, AuditRowsCanBeFilteredAndTheChainVerified) {
  ASSERT_EQ(Put("/admin/v1/config/a", {{"value", 1}}).status, 200);
  ASSERT_EQ(Put("/admin/v1/config/b", {{"value", 2}}).status, 200);
  ASSERT_EQ(Post("/admin/v1/teams", {{"name", "t"}}).status, 201);

  Response sets = Get("/admin/v1/audit?action=config.set");
  ASSERT_EQ(sets.status, 200) << sets.body;
  ASSERT_EQ(sets.body["data"].size(), 2u);
  EXPECT_EQ(sets.body["data"][0]["target"], "config/a");
  EXPECT_EQ(sets.body["data"][0]["actor"], "key-admin");
  EXPECT_EQ(sets.body["data"][0]["after"], 1);
  EXPECT_EQ(sets.body["data"][1]["prev_hash"], sets.body["data"][0]["hash"]);
  Response newest = Get("/admin/v1/audit?order=desc&limit=1");
  ASSERT_EQ(newest.body["data"].size(), 1u);
  EXPECT_EQ(newest.body["data"][0]["action"], "team.create");
  EXPECT_EQ(Get("/admin/v1/audit?actor=someone-else").body["data"], json::array());
  EXPECT_EQ(Get("/admin/v1/audit?limit=0").body["error"]["param"], "limit");
  EXPECT_EQ(Get("/admin/v1/audit?order=sideways").body["error"]["param"], "order");

  Response ok = Get("/admin/v1/audit/verify");
  ASSERT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body["ok"], true);
  const int64_t rows = ok.body["rows_checked"];
  EXPECT_GE(rows, 5);  // two keys made by the fixture, two sets, one team

  // Someone edits a row behind the store's back.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path().c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  const std::string sql = "UPDATE audit_log SET actor = 'mallory' WHERE id = " +
                          std::to_string(sets.body["data"][0]["id"].get<int64_t>());
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  Response bad = Get("/admin/v1/audit/verify");
  EXPECT_EQ(bad.body["ok"], false);
  EXPECT_EQ(bad.body["first_bad_id"], sets.body["data"][0]["id"]);
  EXPECT_NE(bad.body["problem"], "");
}

// ---- Keys and teams ----

TEST_F(AdminApiTest, ACreatedKeyIsShownOnceAndWorksUntilRevoked) {
  Response created = Post("/admin/v1/keys", {{"name", "ops"}, {"role", "admin"}});
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string secret = created.body["key"];
  const std::string id = created.body["id"];
  EXPECT_TRUE(LooksLikeApiKey(secret));
  EXPECT_TRUE(id.starts_with("key-"));
  EXPECT_EQ(created.body["role"], "admin");
  EXPECT_FALSE(created.body.contains("digest"));

  Response listed = Send(HttpMethod::kGet, "/admin/v1/keys", "", secret);
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body["data"].size(), 3u);
  const std::string text = listed.body.dump();
  EXPECT_THAT(text, Not(HasSubstr(secret)));
  EXPECT_THAT(text, Not(HasSubstr(ApiKeyDigest(secret))));
  for (const json& key : listed.body["data"]) {
    EXPECT_FALSE(key.contains("key"));
    EXPECT_FALSE(key.contains("digest"));
  }

  Response revoked = Delete("/admin/v1/keys/" + id);
  ASSERT_EQ(revoked.status, 200);
  EXPECT_NE(revoked.body["revoked_at"], nullptr);
  EXPECT_EQ(Send(HttpMethod::kGet, "/admin/v1/keys", "", secret).status, 401);
  EXPECT_EQ(Delete("/admin/v1/keys/key-nobody").status, 404);
}

TEST_F(AdminApiTest, UserKeysCanBelongToTeamsAndCannotUseTheAdminApi) {
  ASSERT_EQ(Post("/admin/v1/teams", {{"name", "research"}, {"description", "R&D"}}).status, 201);
  Response created = Post("/admin/v1/keys", {{"name", "alice"},
                                             {"team", "research"},
                                             {"allowed_models", {"m1", "m2"}},
                                             {"expires_at", "2099-01-01T00:00:00Z"}});
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.body["role"], "user");
  EXPECT_EQ(created.body["team"], "research");
  EXPECT_EQ(created.body["allowed_models"], (json{"m1", "m2"}));
  EXPECT_EQ(created.body["expires_at"], "2099-01-01T00:00:00.000000Z");
  EXPECT_EQ(Send(HttpMethod::kGet, "/admin/v1/keys", "", created.body["key"]).status, 403);

  EXPECT_EQ(Post("/admin/v1/keys", {{"name", "x"}, {"team", "nope"}}).status, 404);
  EXPECT_EQ(Post("/admin/v1/keys", {{"name", "x"}, {"role", "root"}}).body["error"]["param"],
            "role");
  EXPECT_EQ(
      Post("/admin/v1/keys", {{"name", "x"}, {"expires_at", "tomorrow"}}).body["error"]["param"],
      "expires_at");
  EXPECT_EQ(Post("/admin/v1/keys", {{"name", "x"}, {"allowed_models", {1}}}).body["error"]["param"],
            "allowed_models[0]");

  Response teams = Get("/admin/v1/teams");
  ASSERT_EQ(teams.body["data"].size(), 1u);
  EXPECT_EQ(teams.body["data"][0]["description"], "R&D");
  EXPECT_EQ(Delete("/admin/v1/teams/research").status, 409);  // a key belongs to it
  ASSERT_EQ(Post("/admin/v1/teams", {{"name", "empty"}}).status, 201);
  EXPECT_EQ(Post("/admin/v1/teams", {{"name", "empty"}}).status, 409);
  EXPECT_EQ(Delete("/admin/v1/teams/empty").body["deleted"], true);
}

}  // namespace
}  // namespace triplane::control
