// The official `openai` npm client (pinned in tests/package.json) drives a real
// `triplane engine`: tests/e2e/openai_client.mjs checks every endpoint the SDK offers
// for one model, streaming included.

#include <filesystem>
#include <string>

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

}  // namespace
}  // namespace triplane
