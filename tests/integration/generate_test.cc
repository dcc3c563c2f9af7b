// `triplane gguf random` and `triplane generate` as a user runs them.

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/json.h"
#include "common/subprocess.h"
#include "gtest/gtest.h"
#include "testing/llama_cpp_source.h"
#include "testing/sanitizer.h"

namespace triplane {
namespace {

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
  int64_t peak_rss_bytes = 0;
};

RunResult RunTriplane(const std::filesystem::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), TRIPLANE_BINARY);
  auto out = dir / "stdout.txt";
  auto err = dir / "stderr.txt";
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  RunResult run;
  auto child = common::Subprocess::Spawn({.argv = args, .stdout_path = out.string(), .stderr_path = err.string()});
  if (!child.ok()) return run;
  auto status = (*child)->Wait(std::chrono::seconds(300));
  run.code = status ? status->code : -1;
  run.peak_rss_bytes = status ? status->peak_rss_bytes : 0;
  std::stringstream o, e;
  o << std::ifstream(out).rdbuf();
  e << std::ifstream(err).rdbuf();
  run.out = o.str();
  run.err = e.str();
  return run;
}

TEST(GenerateTest, RandomModelGeneratesGreedilyAndReproducibly) {
  const std::string vocab = testing::LlamaCppVocabPath("llama-bpe").string();
  ASSERT_FALSE(HasFailure());
  auto dir = std::filesystem::temp_directory_path() / ("triplane-generate-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string model = (dir / "model.gguf").string();
  RunResult made = RunTriplane(dir, {"gguf", "random", "--arch", "qwen3", "--size", "tiny", "--type", "q8_0",
                               "--vocab-from", vocab, "--seed", "5", "--out", model});
  ASSERT_EQ(made.code, 0) << made.err;

  std::vector<std::string> args = {"generate", "--model", model, "--prompt", "什么是量子计算? Hello 👋",
                                   "-n", "8", "--temp", "0", "--json", "--top-logprobs", "3", "--threads", "2"};
  RunResult first = RunTriplane(dir, args);
  ASSERT_EQ(first.code, 0) << first.err;
  auto json = common::ParseJson(first.out);
  ASSERT_TRUE(json.ok()) << first.out;
  EXPECT_FALSE((*json)["prompt_token_ids"].empty());
  const auto& ids = (*json)["token_ids"];
  ASSERT_GE(ids.size(), 1u);
  EXPECT_LE(ids.size(), 8u);
  ASSERT_EQ((*json)["top_logprobs"].size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto& top = (*json)["top_logprobs"][i];
    ASSERT_EQ(top.size(), 3u);
    EXPECT_EQ(top[0][0], ids[i]);  // greedy: the chosen token is the most likely one
    EXPECT_LE(top[0][1].get<double>(), 0.0);
    EXPECT_GE(top[0][1].get<double>(), top[1][1].get<double>());
  }
  EXPECT_TRUE((*json)["text"].is_string());
  EXPECT_GT((*json)["prefill_tokens_per_s"].get<double>(), 0.0);

  RunResult second = RunTriplane(dir, args);
  ASSERT_EQ(second.code, 0) << second.err;
  auto again = common::ParseJson(second.out);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["token_ids"], ids);

  RunResult streamed = RunTriplane(dir, {"generate", "--model", model, "--prompt", "Hello", "-n", "4", "--seed", "1"});
  EXPECT_EQ(streamed.code, 0) << streamed.err;
  EXPECT_NE(streamed.err.find("decode:"), std::string::npos) << streamed.err;

  RunResult bad = RunTriplane(dir, {"generate", "--model", vocab, "--prompt", "x"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  std::filesystem::remove_all(dir);
}

TEST(GenerateTest, PeakMemoryIsTheModelPlusKvCachePlusLessThan64MiB) {
  if (testing::kAddressSanitizer) GTEST_SKIP() << "peak memory is not measured under AddressSanitizer";
  const std::string vocab = testing::LlamaCppVocabPath("llama-spm").string();
  ASSERT_FALSE(HasFailure());
  auto dir = std::filesystem::temp_directory_path() / ("triplane-peak-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string model = (dir / "model.gguf").string();
  RunResult made = RunTriplane(dir, {"gguf", "random", "--arch", "llama", "--size", "110m", "--type", "q8_0",
                                     "--vocab-from", vocab, "--out", model});
  ASSERT_EQ(made.code, 0) << made.err;
  RunResult run = RunTriplane(dir, {"generate", "--model", model, "--prompt", "Hello", "-n", "16",
                                    "--ctx", "64", "--threads", "1", "--temp", "0"});
  ASSERT_EQ(run.code, 0) << run.err;
  const double peak = static_cast<double>(run.peak_rss_bytes);  // generate's own
  ASSERT_GT(peak, 0);
  const double model_bytes = static_cast<double>(std::filesystem::file_size(model));
  const double kv_bytes = 12.0 * 64 * 768 * 2 * 2;  // layers × ctx × kv_dim × (K, V) × f16
  EXPECT_LT(peak, model_bytes + kv_bytes + 64.0 * 1024 * 1024)
      << "peak " << peak / 1048576 << " MiB, model " << model_bytes / 1048576 << " MiB";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace triplane
