#include "control/admin/admin_api.h"

#include <thread>

#include "common/sha256.h"
#include "gmock/gmock.h"
#include "testing/file_server.h"
#include "unit/control/admin/admin_test_fixture.h"

namespace triplane::control {
namespace {

using common::HttpMethod;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing_support::FilesIn;

// ---- Authentication ----

TEST_F(AdminApiTest, EveryRouteNeedsAnAdminKey) {
  Response none = Send(HttpMethod::kGet, "/admin/v1/models", "", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.body["error"]["type"], "authentication_error");
  EXPECT_EQ(Send(HttpMethod::kGet, "/admin/v1/models", "", "tp-" + std::string(43, 'x')).status,
            401);
  EXPECT_EQ(Send(HttpMethod::kGet, "/admin/v1/models", "", "not-a-key").status, 401);
  Response user = Send(HttpMethod::kGet, "/admin/v1/models", "", user_key_);
  EXPECT_EQ(user.status, 403);
  EXPECT_EQ(user.body["error"]["type"], "permission_error");
  EXPECT_EQ(Send(HttpMethod::kPost, "/admin/v1/teams", R"({"name":"t"})", user_key_).status, 403);
  EXPECT_EQ(Get("/admin/v1/models").status, 200);
}

TEST_F(AdminApiTest, TheXApiKeyHeaderWorksToo) {
  common::HttpClientRequest request{.url = Url("/admin/v1/overview")};
  request.headers.Set("x-api-key", admin_key_);
  absl::StatusOr<common::HttpResponse> response = client_.Send(std::move(request));
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 200);
}

TEST_F(AdminApiTest, RevokedAndExpiredKeysAreRefused) {
  const std::string secret = GenerateApiKey();
  ASSERT_TRUE(store_
                  ->CreateApiKey({.id = "key-old",
                                  .name = "old",
                                  .digest = ApiKeyDigest(secret),
                                  .role = KeyRole::kAdmin,
                                  .expires_at = absl::Now() - absl::Hours(1)},
                                 {})
                  .ok());
  Response expired = Send(HttpMethod::kGet, "/admin/v1/keys", "", secret);
  EXPECT_EQ(expired.status, 401);
  EXPECT_THAT(expired.body["error"]["message"].get<std::string>(), HasSubstr("expired"));
  ASSERT_TRUE(store_->RevokeApiKey("key-admin", {}).ok());
  EXPECT_EQ(Get("/admin/v1/keys").status, 401);
}

TEST_F(AdminApiTest, UnknownRoutesAre404) {
  Response r = Get("/admin/v1/nothing-here");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Get("/admin/v1/models/m/versions/1/files").status, 404);
  EXPECT_EQ(Get("/admin/v1/models/m/versions").status, 405);  // only POST there
}

// ---- Models ----

TEST_F(AdminApiTest, AddingAVersionFromAPathRegistersItsFileAndMetadata) {
  const std::string source = Source("alpha");
  Response r = Post("/admin/v1/models/alpha/versions",
                    {{"path", source}, {"description", "first"}, {"unknown", 1}});
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string sha = common::Sha256Hex(testing_support::ReadFile(source));
  EXPECT_EQ(r.body["model"], "alpha");
  EXPECT_EQ(r.body["version"], "1");
  EXPECT_EQ(r.body["sha256"], sha);
  EXPECT_EQ(r.body["file_path"], (models_dir_ / (sha + ".gguf")).string());
  EXPECT_EQ(r.body["gguf"]["architecture"], "llama");
  EXPECT_EQ(r.body["gguf"]["context_length"], 2048);
  EXPECT_EQ(r.body["gguf"]["has_chat_template"], true);
  EXPECT_TRUE(std::filesystem::exists(models_dir_ / (sha + ".gguf")));

  Response model = Get("/admin/v1/models/alpha");
  ASSERT_EQ(model.status, 200);
  EXPECT_EQ(model.body["description"], "first");
  ASSERT_EQ(model.body["versions"].size(), 1u);
  EXPECT_EQ(model.body["versions"][0]["sha256"], sha);
  EXPECT_EQ(Get("/admin/v1/models/alpha/versions/1").body["sha256"], sha);
  EXPECT_EQ(Get("/admin/v1/models").body["data"][0]["name"], "alpha");
  // The audit row names the caller's key.
  Response audit = Get("/admin/v1/audit?action=model.create");
  ASSERT_EQ(audit.body["data"].size(), 1u);
  EXPECT_EQ(audit.body["data"][0]["actor"], "key-admin");
}

TEST_F(AdminApiTest, ModelNamesWithASlashArePercentEncodedInPaths) {
  AddVersion("org/m", "org-m");
  Response r = Get("/admin/v1/models/org%2Fm");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["name"], "org/m");
  EXPECT_EQ(Get("/admin/v1/models/org%2Fm/versions/1").status, 200);
  EXPECT_EQ(Delete("/admin/v1/models/org%2Fm").body["deleted"], true);
  EXPECT_EQ(Get("/admin/v1/models/org%2Fm").status, 404);
}

TEST_F(AdminApiTest, ABadPathOrANonGgufFileIs400AndWritesNothing) {
  Response missing = Post("/admin/v1/models/m/versions", {{"path", "/no/such/file.gguf"}});
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.body["error"]["message"], "no such file: /no/such/file.gguf");
  const std::string text = (dir_.path() / "src" / "x.txt").string();
  std::ofstream(text) << "hello";
  Response not_gguf = Post("/admin/v1/models/m/versions", {{"path", text}});
  EXPECT_EQ(not_gguf.status, 400);
  EXPECT_THAT(not_gguf.body["error"]["message"].get<std::string>(), HasSubstr("GGUF"));
  EXPECT_EQ(Post("/admin/v1/models/m/versions", json::object()).body["error"]["param"], "path");
  EXPECT_THAT(FilesIn(models_dir_), IsEmpty());
  EXPECT_EQ(Get("/admin/v1/models/m").status, 404);
}

TEST_F(AdminApiTest, CreatingAModelTwiceIsAConflict) {
  EXPECT_EQ(Post("/admin/v1/models", {{"name", "m"}, {"description", "d"}}).status, 201);
  Response again = Post("/admin/v1/models", {{"name", "m"}});
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.body["error"]["type"], "conflict_error");
  EXPECT_EQ(Post("/admin/v1/models", {{"name", "bad name!"}}).status, 400);
}

TEST_F(AdminApiTest, AVersionInUseByADeploymentCannotBeDeleted) {
  AddVersion("m", "a");
  ASSERT_EQ(Post("/admin/v1/deployments", {{"name", "d"}, {"model", "m"}}).status, 201);
  Response r = Delete("/admin/v1/models/m/versions/1");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body["error"]["type"], "conflict_error");
  EXPECT_EQ(Delete("/admin/v1/models/m").status, 409);
  ASSERT_EQ(Delete("/admin/v1/deployments/d").status, 200);
  EXPECT_EQ(Delete("/admin/v1/models/m/versions/1").body["deleted"], true);
  EXPECT_THAT(FilesIn(models_dir_), IsEmpty());
}

// ---- Deployments ----

TEST_F(AdminApiTest, DeploymentsCanBeCreatedPatchedAndDeleted) {
  AddVersion("m", "a");
  AddVersion("m", "b");
  Response created = Post("/admin/v1/deployments",
                          {{"name", "chat"}, {"model", "m"}, {"engine", {{"threads", 2}}}});
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.body["version"], "2");  // the newest
  EXPECT_EQ(created.body["replicas"], 1);
  EXPECT_EQ(created.body["generation"], 1);
  EXPECT_EQ(created.body["engine"]["threads"], 2);
  EXPECT_EQ(created.body["status"]["phase"], "pending");
  EXPECT_EQ(created.body["instances"], json::array());
  EXPECT_EQ(deployment_changes_, 1);

  Response patched = Patch("/admin/v1/deployments/chat",
                           {{"replicas", 3}, {"engine", {{"context_length", 1024}}}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.body["replicas"], 3);
  EXPECT_EQ(patched.body["generation"], 2);
  EXPECT_EQ(patched.body["engine"]["threads"], 2);  // not given: kept
  EXPECT_EQ(patched.body["engine"]["context_length"], 1024);
  EXPECT_EQ(patched.body["engine"]["kv_type"], "");  // the engine's default
  EXPECT_EQ(deployment_changes_, 2);
  Response q8 = Patch("/admin/v1/deployments/chat", {{"engine", {{"kv_type", "q8_0"}}}});
  ASSERT_EQ(q8.status, 200) << q8.body;
  EXPECT_EQ(q8.body["engine"]["kv_type"], "q8_0");
  EXPECT_EQ(q8.body["generation"], 3);
  Response bad_kv = Patch("/admin/v1/deployments/chat", {{"engine", {{"kv_type", "q4_0"}}}});
  EXPECT_EQ(bad_kv.status, 400) << bad_kv.body;
  EXPECT_THAT(bad_kv.body["error"]["message"].get<std::string>(), HasSubstr("kv_type"));
  EXPECT_EQ(deployment_changes_, 3);  // the refused change is not one

  Response stale = Patch("/admin/v1/deployments/chat", {{"replicas", 1}, {"if_generation", 1}});
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(
      Patch("/admin/v1/deployments/chat", {{"version", "1"}, {"if_generation", 3}}).body["version"],
      "1");

  ASSERT_TRUE(store_
                  ->PutInstance({.id = "chat-abc123",
                                 .deployment = "chat",
                                 .model = "m",
                                 .version = "1",
                                 .provider = "local",
                                 .host = "127.0.0.1",
                                 .port = 9001,
                                 .state = InstanceState::kReady})
                  .ok());
  Response got = Get("/admin/v1/deployments/chat");
  ASSERT_EQ(got.body["instances"].size(), 1u);
  EXPECT_EQ(got.body["instances"][0]["url"], "http://127.0.0.1:9001");
  EXPECT_EQ(got.body["instances"][0]["state"], "ready");
  EXPECT_EQ(Get("/admin/v1/deployments").body["data"][0]["instances"].size(), 1u);
  EXPECT_EQ(Get("/admin/v1/instances?deployment=chat").body["data"].size(), 1u);
  EXPECT_EQ(Get("/admin/v1/instances?deployment=other").body["data"].size(), 0u);

  Response overview = Get("/admin/v1/overview");
  EXPECT_EQ(overview.body["models"], 1);
  EXPECT_EQ(overview.body["versions"], 2);
  EXPECT_EQ(overview.body["deployments"]["total"], 1);
  EXPECT_EQ(overview.body["deployments"]["pending"], 1);
  EXPECT_EQ(overview.body["instances"]["ready"], 1);
  EXPECT_EQ(overview.body["capacity"]["cores"], 8);
  EXPECT_EQ(overview.body["store"]["kind"], "sqlite");
  EXPECT_GT(overview.body["audit_rows"].get<int64_t>(), 0);

  EXPECT_EQ(Delete("/admin/v1/deployments/chat").body["deleted"], true);
  EXPECT_EQ(deployment_changes_, 5);
  EXPECT_EQ(Get("/admin/v1/deployments/chat").status, 404);
}

TEST_F(AdminApiTest, DeploymentErrorsNameTheirCause) {
  Response unknown = Post("/admin/v1/deployments", {{"name", "d"}, {"model", "nope"}});
  EXPECT_EQ(unknown.status, 404);
  AddVersion("m", "a");
  Response replicas =
      Post("/admin/v1/deployments", {{"name", "d"}, {"model", "m"}, {"replicas", "two"}});
  EXPECT_EQ(replicas.status, 400);
  EXPECT_EQ(replicas.body["error"]["param"], "replicas");
  EXPECT_EQ(replicas.body["error"]["code"], "invalid_type");
  Response threads =
      Post("/admin/v1/deployments", {{"name", "d"}, {"model", "m"}, {"engine", {{"threads", -1}}}});
  EXPECT_EQ(threads.status, 400);
  EXPECT_EQ(threads.body["error"]["param"], "engine.threads");
  EXPECT_EQ(Post("/admin/v1/deployments", {{"model", "m"}}).body["error"]["param"], "name");
  EXPECT_EQ(Patch("/admin/v1/deployments/none", {{"replicas", 1}}).status, 404);
  EXPECT_EQ(deployment_changes_, 0);
}

TEST_F(AdminApiTest, MalformedJsonIs400OnEveryBodyRoute) {
  AddVersion("m", "a");
  ASSERT_EQ(Post("/admin/v1/deployments", {{"name", "d"}, {"model", "m"}}).status, 201);
  const std::pair<HttpMethod, std::string> routes[] = {
      {HttpMethod::kPost, "/admin/v1/models"},
      {HttpMethod::kPost, "/admin/v1/models/m/versions"},
      {HttpMethod::kPost, "/admin/v1/pulls"},
      {HttpMethod::kPost, "/admin/v1/deployments"},
      {HttpMethod::kPatch, "/admin/v1/deployments/d"},
      {HttpMethod::kPut, "/admin/v1/config/some.key"},
      {HttpMethod::kPost, "/admin/v1/keys"},
      {HttpMethod::kPost, "/admin/v1/teams"},
  };
  for (const auto& [method, path] : routes) {
    for (const char* body : {"{not json", "[1, 2]"}) {
      Response r = Send(method, path, body, admin_key_);
      EXPECT_EQ(r.status, 400) << path << " " << body;
      EXPECT_EQ(r.body["error"]["type"], "invalid_request_error") << path;
      EXPECT_EQ(r.body["error"]["code"], "invalid_json") << path;
    }
  }
}

// ---- Pulls ----

class AdminPullTest : public AdminApiTest {
 protected:
  void SetUp() override {
    AdminApiTest::SetUp();
    body_ = testing_support::ReadFile(Source("pulled"));
    files_ = std::make_unique<testing::FileServer>(body_);
  }
  void TearDown() override {
    AdminApiTest::TearDown();  // the repository cancels its pulls first
    files_.reset();
  }

  json WaitForPull(const std::string& id) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      Response r = Get("/admin/v1/pulls/" + id);
      if (r.body["state"] != "queued" && r.body["state"] != "running") return r.body;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << id << " did not finish";
    return {};
  }

  std::string body_;
  std::unique_ptr<testing::FileServer> files_;
};

TEST_F(AdminPullTest, APullRunsInTheBackgroundAndRegistersTheVersion) {
  files_->DropAfter(100, 1);  // and resumes
  const std::string sha = common::Sha256Hex(body_);
  Response started =
      Post("/admin/v1/pulls", {{"model", "pulled"}, {"url", files_->url()}, {"sha256", sha}});
  ASSERT_EQ(started.status, 202) << started.body;
  EXPECT_EQ(started.body["id"], "pull-1");
  const json done = WaitForPull("pull-1");
  ASSERT_EQ(done["state"], "succeeded") << done;
  EXPECT_EQ(done["bytes_done"], body_.size());
  EXPECT_EQ(done["bytes_total"], body_.size());
  EXPECT_EQ(done["result"]["sha256"], sha);
  EXPECT_EQ(files_->ranges(), std::vector<std::string>{"100-"});
  EXPECT_EQ(Get("/admin/v1/models/pulled/versions/1").body["source"], files_->url());
  EXPECT_EQ(Get("/admin/v1/pulls").body["data"].size(), 1u);
}

TEST_F(AdminPullTest, AChecksumMismatchFailsThePull) {
  Response started =
      Post("/admin/v1/pulls",
           {{"model", "pulled"}, {"url", files_->url()}, {"sha256", std::string(64, 'A')}});
  ASSERT_EQ(started.status, 202) << started.body;
  const json done = WaitForPull(started.body["id"]);
  EXPECT_EQ(done["state"], "failed");
  EXPECT_THAT(done["error"].get<std::string>(), HasSubstr("checksum mismatch"));
  EXPECT_EQ(done["result"], nullptr);
  EXPECT_EQ(Get("/admin/v1/models/pulled").status, 404);
}

TEST_F(AdminPullTest, UnfetchableOrSelfPointingUrlsAre400) {
  EXPECT_EQ(Post("/admin/v1/pulls", {{"model", "m"}, {"url", "ftp://example.com/m.gguf"}}).status,
            400);
  Response self = Post("/admin/v1/pulls", {{"model", "m"}, {"url", Url("/admin/v1/models")}});
  EXPECT_EQ(self.status, 400);
  EXPECT_THAT(self.body["error"]["message"].get<std::string>(), HasSubstr("own address"));
  EXPECT_EQ(Post("/admin/v1/pulls",
                 {{"model", "m"}, {"url", "http://localhost:" + std::to_string(port_) + "/x.gguf"}})
                .status,
            400);
  EXPECT_EQ(Post("/admin/v1/pulls", {{"model", "m"}}).body["error"]["param"], "url");
  EXPECT_EQ(Get("/admin/v1/pulls/pull-7").status, 404);
  EXPECT_EQ(Get("/admin/v1/pulls").body["data"], json::array());
}

}  // namespace
}  // namespace triplane::control
