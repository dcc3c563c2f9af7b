// The official `openai` npm client (pinned in tests/package.json) drives a real
// `triplane engine`: tests/e2e/openai_client.mjs checks every endpoint the SDK offers
// for one model, streaming included.

#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "common/subprocess.h"
#include "gtest/gtest.h"
#include "testing/engine_process.h"
#include "testing/llama_cpp_source.h"

namespace triplane {
namespace {

TEST(OpenAiClientTest, OfficialNodeClientPassesEveryCheck) {
  const std::filesystem::path source = TRIPLANE_SOURCE_DIR;
  ASSERT_TRUE(std::filesystem::exists(source / "tests/node_modules/openai"))
      << "the openai npm package is missing: run scripts/setup (npm ci in tests/)";
  const auto dir = std::filesystem::temp_directory_path() /
                   ("triplane-openai-client-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto model = dir / "tiny.gguf";
  testing::WriteTinyModel(testing::LlamaCppVocabPath("llama-bpe"), model);
  ASSERT_FALSE(HasFailure());
  auto engine = testing::EngineProcess::Start(
      dir, model, {"--ctx", "512", "--served-model-name", "tiny-llama"});
  ASSERT_NE(engine, nullptr);

  const auto log = dir / "node.log";
  auto node = common::Subprocess::Spawn(
      {.argv = {"/usr/bin/env", "node", (source / "tests/e2e/openai_client.mjs").string(),
                engine->url(), "tiny-llama"},
       .stdout_path = log.string(),
       .stderr_path = log.string()});
  ASSERT_TRUE(node.ok()) << node.status();
  auto status = (*node)->Wait(std::chrono::seconds(180));
  ASSERT_TRUE(status.has_value()) << "node did not finish: " << testing::ReadWholeFile(log);
  const std::string output = testing::ReadWholeFile(log);
  EXPECT_EQ(status->code, 0) << output << "\nengine log:\n" << engine->log();
  EXPECT_NE(output.find(R"("ok":true)"), std::string::npos) << output;
  engine.reset();
  std::filesystem::remove_all(dir);
}

// The same checks through the gateway of `triplane serve`, with an API key: what users
// of the platform run.
TEST(OpenAiClientTest, OfficialNodeClientPassesEveryCheckThroughTheGateway) {
  const std::filesystem::path source = TRIPLANE_SOURCE_DIR;
  ASSERT_TRUE(std::filesystem::exists(source / "tests/node_modules/openai"));
  const auto dir = std::filesystem::temp_directory_path() /
                   ("triplane-openai-gateway-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto model = dir / "tiny.gguf";
  testing::WriteTinyModel(testing::LlamaCppVocabPath("llama-bpe"), model);
  ASSERT_FALSE(HasFailure());
  const auto data = dir / "data";
  auto serve = common::Subprocess::Spawn(
      {.argv = {TRIPLANE_BINARY, "serve", "--port", "0", "--no-demo", "--data-dir", data.string()},
       .stdout_path = (dir / "serve.out").string(),
       .stderr_path = (dir / "serve.log").string()});
  ASSERT_TRUE(serve.ok());
  std::string url;
  for (int i = 0; i < 3000 && url.empty(); ++i) {
    const std::string out = testing::ReadWholeFile(dir / "serve.out");
    const size_t at = out.find("http://");
    if (at != std::string::npos && out.find('\n', at) != std::string::npos) {
      url = out.substr(at, out.find('\n', at) - at);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(url.empty()) << testing::ReadWholeFile(dir / "serve.log");
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), TRIPLANE_BINARY);
    args.insert(args.end(), {"--server", url, "--data-dir", data.string()});
    auto child = common::Subprocess::Spawn({.argv = args, .stdout_path = (dir / "cli.log").string(),
                                            .stderr_path = (dir / "cli.log").string()});
    EXPECT_TRUE(child.ok());
    auto status = (*child)->Wait(std::chrono::seconds(180));
    return status.has_value() ? status->code : -1;
  };
  ASSERT_EQ(cli({"models", "add", "tiny-llama", model.string()}), 0) << testing::ReadWholeFile(dir / "cli.log");
  ASSERT_EQ(cli({"deploy", "tiny", "--model", "tiny-llama", "--ctx", "512", "--wait", "--timeout", "120"}), 0)
      << testing::ReadWholeFile(dir / "cli.log");
  std::string key = testing::ReadWholeFile(data / "admin.key");
  key = key.substr(0, key.find('\n'));

  // The gateway routes to the deployment once a reconciler pass and a feed refresh have
  // seen it ready: wait until /v1/models lists it.
  common::HttpClient http;
  bool listed = false;
  for (int i = 0; i < 500 && !listed; ++i) {
    common::HttpClientRequest request{.url = url + "/v1/models"};
    request.headers.Set("authorization", "Bearer " + key);
    auto models = http.Send(request);
    listed = models.ok() && models->body.find("tiny-llama") != std::string::npos;
    if (!listed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(listed);

  const auto log = dir / "node.log";
  auto node = common::Subprocess::Spawn(
      {.argv = {"/usr/bin/env", "node", (source / "tests/e2e/openai_client.mjs").string(), url,
                "tiny-llama", key},
       .stdout_path = log.string(),
       .stderr_path = log.string()});
  ASSERT_TRUE(node.ok()) << node.status();
  std::optional<common::ExitStatus> status = (*node)->Wait(std::chrono::seconds(180));
  ASSERT_TRUE(status.has_value()) << "node did not finish: " << testing::ReadWholeFile(log);
  const std::string output = testing::ReadWholeFile(log);
  EXPECT_EQ(status->code, 0) << output << "\nserve log:\n" << testing::ReadWholeFile(dir / "serve.log");
  EXPECT_NE(output.find(R"("ok":true)"), std::string::npos) << output;
  (*serve)->Terminate(std::chrono::seconds(30));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace triplane
