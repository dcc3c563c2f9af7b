#pragma once

// The admin API suites' fixture: a real SQLite store in a temp dir, a model repository
// reading real tiny GGUF files, the AdminApi on an in-process HttpServer, and a client.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "common/http_client.h"
#include "common/http_server.h"
#include "common/json.h"
#include "control/admin/admin_api.h"
#include "control/admin/api_keys.h"
#include "control/monitor/metrics_history.h"
#include "control/store/store_factory.h"
#include "gtest/gtest.h"
#include "unit/control/repository/repository_test_support.h"

namespace triplane::control {

class AdminApiTest : public ::testing::Test {
 protected:
  struct Response {
    int status = 0;
    nlohmann::json body;
  };

  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenStore("sqlite:" + db_path(), dir_.path().string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    models_dir_ = dir_.path() / "models";
    std::filesystem::create_directories(dir_.path() / "src");
    // The server's port is chosen before the repository is made, so that the repository
    // can refuse pulls from the control plane's own address as `triplane` configures it.
    port_ = FreePort();
    repo_ = std::make_unique<ModelRepository>(
        *store_, RepositoryOptions{.models_dir = models_dir_.string(),
                                   .read_gguf = testing_support::ReadTinyGguf,
                                   .refused_hosts = {"127.0.0.1:" + std::to_string(port_)}});
    api_ = std::make_unique<AdminApi>(
        AdminApiOptions{.store = store_.get(),
                        .repository = repo_.get(),
                        .on_deployments_changed = [this] { ++deployment_changes_; },
                        .capacity =
                            [] {
                              return nlohmann::json{{"cores", 8}, {"memory_bytes", 1 << 30}};
                            },
                        .metrics = &metrics_,
                        .worker_threads = 2,
                        .max_watches = 4});
    common::HttpRouter router;
    api_->AddRoutes(router);
    server_ = std::make_unique<common::HttpServer>(
        common::HttpServerOptions{.host = "127.0.0.1", .port = port_, .threads = 2},
        std::move(router));
    ASSERT_TRUE(server_->Start().ok());
    admin_key_ = MakeKey("key-admin", KeyRole::kAdmin);
    user_key_ = MakeKey("key-user", KeyRole::kUser);
  }

  void TearDown() override {
    // The order `triplane` uses too: stop serving, let the API's workers drop the
    // responders they hold, then free the server (a responder must not outlive it).
    if (server_) server_->Shutdown(std::chrono::milliseconds(0));
    api_.reset();
    server_.reset();
    repo_.reset();
    store_.reset();
  }

  static uint16_t FreePort() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  std::string db_path() const { return (dir_.path() / "triplane.db").string(); }

  // A key put straight into the store; returns the secret.
  std::string MakeKey(const std::string& id, KeyRole role) {
    const std::string secret = GenerateApiKey();
    absl::StatusOr<ApiKey> key = store_->CreateApiKey(
        {.id = id, .name = id, .digest = ApiKeyDigest(secret), .role = role}, {.actor = "system"});
    EXPECT_TRUE(key.ok()) << key.status();
    return secret;
  }

  std::string Url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

  Response Send(common::HttpMethod method, std::string_view path, std::string body,
                const std::string& key) {
    common::HttpClientRequest request{.method = method, .url = Url(path), .body = std::move(body)};
    if (!key.empty()) request.headers.Set("Authorization", "Bearer " + key);
    if (!request.body.empty()) request.headers.Set("Content-Type", "application/json");
    absl::StatusOr<common::HttpResponse> response = client_.Send(std::move(request));
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) return {};
    absl::StatusOr<nlohmann::json> json = common::ParseJson(response->body);
    return {response->status, json.ok() ? *json : nlohmann::json(response->body)};
  }
  Response Get(std::string_view path) {
    return Send(common::HttpMethod::kGet, path, "", admin_key_);
  }
  Response Delete(std::string_view path) {
    return Send(common::HttpMethod::kDelete, path, "", admin_key_);
  }
  Response Post(std::string_view path, const nlohmann::json& body) {
    return Send(common::HttpMethod::kPost, path, body.dump(), admin_key_);
  }
  Response Put(std::string_view path, const nlohmann::json& body) {
    return Send(common::HttpMethod::kPut, path, body.dump(), admin_key_);
  }
  Response Patch(std::string_view path, const nlohmann::json& body) {
    return Send(common::HttpMethod::kPatch, path, body.dump(), admin_key_);
  }

  // A real tiny GGUF file under the temp dir.
  std::string Source(const std::string& name) {
    const std::string path = (dir_.path() / "src" / (name + ".gguf")).string();
    testing_support::WriteTinyGguf(path, name);
    return path;
  }
  // Adds a version of `model` through the API; returns its JSON.
  nlohmann::json AddVersion(const std::string& model, const std::string& file) {
    Response r = Post("/admin/v1/models/" + common::PercentEncode(model) + "/versions",
                      {{"path", Source(file)}});
    EXPECT_EQ(r.status, 201) << r.body;
    return r.body;
  }

  testing_support::TempDir dir_;
  std::filesystem::path models_dir_;
  uint16_t port_ = 0;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ModelRepository> repo_;
  MetricsHistory metrics_;  // what GET /admin/v1/metrics/... serves
  std::unique_ptr<AdminApi> api_;
  std::unique_ptr<common::HttpServer> server_;
  common::HttpClient client_;
  std::string admin_key_;
  std::string user_key_;
  std::atomic<int> deployment_changes_{0};
};

}  // namespace triplane::control
