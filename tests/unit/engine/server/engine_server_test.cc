// The engine API before a model is attached and while draining, in process (the
// integration test covers a loaded model in a real `triplane engine`).

#include "engine/server/engine_server.h"

#include "common/http_client.h"
#include "common/http_server.h"
#include "common/json.h"
#include "gtest/gtest.h"

namespace triplane::engine::server {
namespace {

using common::HttpMethod;

class EngineServerStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ = std::make_unique<EngineServer>(
        EngineServerOptions{.served_model_name = "m", .metrics = &registry_});
    common::HttpRouter router;
    api_->AddRoutes(router);
    server_ = std::make_unique<common::HttpServer>(
        common::HttpServerOptions{.port = 0, .threads = 1, .metrics = &registry_},
        std::move(router));
    ASSERT_TRUE(server_->Start().ok());
    base_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override {
    server_->Shutdown(std::chrono::milliseconds(100));
    server_.reset();
    api_.reset();
  }

  common::HttpResponse Send(HttpMethod method, const std::string& path, std::string body = "") {
    auto response = client_.Send({.method = method, .url = base_ + path, .body = std::move(body)});
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : common::HttpResponse{};
  }

  common::MetricsRegistry registry_;
  std::unique_ptr<EngineServer> api_;
  std::unique_ptr<common::HttpServer> server_;
  common::HttpClient client_;
  std::string base_;
};

TEST_F(EngineServerStateTest, WhileStartingHealthIs503AndModelEndpointsRefuse) {
  EXPECT_EQ(api_->state(), ServerState::kStarting);
  common::HttpResponse health = Send(HttpMethod::kGet, "/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(common::ParseJson(health.body)->at("status"), "starting");
  for (const char* path :
       {"/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/tokenize", "/detokenize"}) {
    common::HttpResponse refused = Send(HttpMethod::kPost, path, "{}");
    EXPECT_EQ(refused.status, 503) << path;
    EXPECT_EQ(common::ParseJson(refused.body)->at("error").at("code"), "model_loading") << path;
    EXPECT_EQ(refused.headers.Get("Retry-After").value_or(""), "1");
  }
  // The model list needs no model loaded.
  common::HttpResponse models = Send(HttpMethod::kGet, "/v1/models");
  EXPECT_EQ(models.status, 200);
  EXPECT_EQ(common::ParseJson(models.body)->at("data").at(0).at("id"), "m");
  EXPECT_EQ(Send(HttpMethod::kGet, "/v1/models/other").status, 404);
  EXPECT_EQ(api_->in_flight(), 0);
}

TEST_F(EngineServerStateTest, DrainingIs503WithItsOwnStatus) {
  api_->StartDraining();
  common::HttpResponse health = Send(HttpMethod::kGet, "/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(common::ParseJson(health.body)->at("status"), "draining");
  common::HttpResponse refused = Send(HttpMethod::kPost, "/v1/completions", R"({"prompt": "x"})");
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(common::ParseJson(refused.body)->at("error").at("code"), "draining");
  EXPECT_TRUE(api_->WaitIdle(std::chrono::milliseconds(10)));
}

TEST_F(EngineServerStateTest, MetricsRenderWithoutAnEngine) {
  common::HttpResponse metrics = Send(HttpMethod::kGet, "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("triplane_num_requests_running 0"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("triplane_kv_cache_usage_perc 0"), std::string::npos);
}

}  // namespace
}  // namespace triplane::engine::server
