// The web console in headless Chromium against a real `triplane serve`:
// tests/e2e/web_console.mjs (playwright-core driving Debian's chromium) signs in, chats
// with real engines (streaming, stop, regenerate, rate limit), checks that model output
// cannot inject HTML, and uses every page of the admin console. Screenshots of each page
// are kept under BUILD_DIR/test-artifacts/web/.

#include <csignal>
#include <filesystem>
#include <string>
#include <thread>

#include "common/http_client.h"
#include "common/subprocess.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/engine_process.h"
#include "testing/file_server.h"
#include "testing/serve_process.h"

namespace triplane {
namespace {

using common::HttpMethod;
using nlohmann::json;

TEST(WebConsoleTest, ChatAndAdminConsoleWorkInChromium) {
  const std::filesystem::path source = TRIPLANE_SOURCE_DIR;
  ASSERT_TRUE(std::filesystem::exists(source / "tests/node_modules/playwright-core"))
      << "the playwright-core npm package is missing: run scripts/setup (npm ci in tests/)";
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium")) << "chromium is missing: run scripts/setup";
  const auto dir = std::filesystem::temp_directory_path() /
                   ("triplane-web-console-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto artifacts = std::filesystem::path(TRIPLANE_BINARY).parent_path() / "test-artifacts" / "web";
  std::filesystem::remove_all(artifacts);

  auto write_model = [&](const std::string& size, const std::string& seed, const std::filesystem::path& out) {
    auto child = common::Subprocess::Spawn(
        {.argv = {TRIPLANE_BINARY, "gguf", "random", "--size", size, "--type", "q8_0", "--seed", seed,
                  "--out", out.string()},
         .stdout_path = (dir / "gguf.log").string(),
         .stderr_path = (dir / "gguf.log").string()});
    ASSERT_TRUE(child.ok()) << child.status();
    auto status = (*child)->Wait(std::chrono::seconds(300));
    ASSERT_TRUE(status.has_value() && status->ok()) << testing::ReadWholeFile(dir / "gguf.log");
  };
  // A model big enough (110M parameters, 4,096 tokens of context) that an answer is
  // still streaming when the test presses Stop.
  const auto long_model = dir / "long.gguf";
  ASSERT_NO_FATAL_FAILURE(write_model("110m", "2", long_model));
  // One more for the console to add by path, and to pull from a URL.
  const auto extra_model = dir / "extra.gguf";
  ASSERT_NO_FATAL_FAILURE(write_model("tiny", "3", extra_model));
  testing::FileServer files(testing::ReadWholeFile(extra_model));

  // Three engines at most (demo scaled to two, long): more than this machine's cores
  // perhaps, which placement would refuse; they are small.
  auto serve = testing::ServeProcess::Start(dir, {"--local-cores", "8"});
  ASSERT_NE(serve, nullptr);
  common::HttpResponse added = serve->Call(HttpMethod::kPost, "/admin/v1/models/long/versions",
                                           {{"path", long_model.string()}});
  ASSERT_EQ(added.status, 201) << added.body;
  std::filesystem::remove(long_model);
  common::HttpResponse deployed = serve->Call(HttpMethod::kPost, "/admin/v1/deployments",
                                              {{"name", "long"}, {"model", "long"}});
  ASSERT_EQ(deployed.status, 201) << deployed.body;
  common::HttpResponse key = serve->Call(HttpMethod::kPost, "/admin/v1/keys", {{"name", "web-user"}});
  ASSERT_EQ(key.status, 201) << key.body;
  const std::string user_key = json::parse(key.body)["key"];
  ASSERT_TRUE(serve->WaitUntilAnswers("demo"));
  ASSERT_TRUE(serve->WaitUntilAnswers("long"));

  const auto log = dir / "node.log";
  auto node = common::Subprocess::Spawn(
      {.argv = {"/usr/bin/env", "node", (source / "tests/e2e/web_console.mjs").string(), serve->url(),
                serve->admin_key(), user_key, artifacts.string(), extra_model.string(), files.url()},
       .stdout_path = log.string(),
       .stderr_path = log.string()});
  ASSERT_TRUE(node.ok()) << node.status();
  auto status = (*node)->Wait(std::chrono::seconds(900));
  if (!status.has_value()) (*node)->Signal(SIGKILL);
  const std::string output = testing::ReadWholeFile(log);
  ASSERT_TRUE(status.has_value()) << "node did not finish: " << output;
  std::printf("web console screenshots: %s\n", artifacts.c_str());
  EXPECT_EQ(status->code, 0) << output << "\nserve log:\n" << serve->log().substr(0, 20000);
  EXPECT_NE(output.find(R"("ok":true)"), std::string::npos) << output;
  serve.reset();
  std::filesystem::remove_all(dir);
}

// `triplane gateway` serves the same pages as the serve it follows, byte for byte.
TEST(WebConsoleTest, ASplitGatewayServesTheSamePages) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("triplane-web-gateway-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto serve = testing::ServeProcess::Start(dir, {"--no-demo"});
  ASSERT_NE(serve, nullptr);
  const auto out = dir / "gateway.out";
  auto gateway = common::Subprocess::Spawn(
      {.argv = {TRIPLANE_BINARY, "gateway", "--port", "0", "--control", serve->url(), "--admin-key",
                serve->admin_key()},
       .stdout_path = out.string(),
       .stderr_path = (dir / "gateway.log").string()});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  std::string gateway_url;
  for (int i = 0; i < 3000 && gateway_url.empty(); ++i) {
    const std::string text = testing::ReadWholeFile(out);
    if (text.find('\n') != std::string::npos) gateway_url = text.substr(0, text.find('\n'));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(gateway_url.empty()) << testing::ReadWholeFile(dir / "gateway.log");

  common::HttpClient client;
  for (const std::string path : {"/", "/admin", "/chat.js", "/console/main.js", "/style.css"}) {
    auto from_serve = client.Send({.url = serve->url() + path});
    auto from_gateway = client.Send({.url = gateway_url + path});
    ASSERT_TRUE(from_serve.ok() && from_gateway.ok()) << path;
    EXPECT_EQ(from_gateway->status, 200) << path;
    EXPECT_EQ(from_gateway->body, from_serve->body) << path;
    EXPECT_EQ(from_gateway->headers.Get("etag"), from_serve->headers.Get("etag")) << path;
    EXPECT_TRUE(from_gateway->headers.Has("content-security-policy")) << path;
    // The browser's revalidation: the same ETag back, nothing to send.
    common::HttpClientRequest again{.url = gateway_url + path};
    again.headers.Set("if-none-match", from_gateway->headers.Get("etag").value_or(""));
    auto cached = client.Send(again);
    ASSERT_TRUE(cached.ok());
    EXPECT_EQ(cached->status, 304) << path;
  }
  (*gateway)->Signal(SIGTERM);
  auto exit = (*gateway)->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->code, 0);
  serve.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace triplane
