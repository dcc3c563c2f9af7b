// `triplane gguf inspect` on files the test writes with GgufWriter: what a user sees.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/gguf/gguf_writer.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace triplane::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct GgufRunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

class GgufCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / fmt::format("gguf_cli_{}", getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string PathOf(std::string_view name) const { return (dir_ / name).string(); }

  // Runs the triplane binary with `args` (no shell metacharacters) via the shell.
  GgufRunResult Run(const std::string& args) const {
    const std::string out = PathOf("stdout"), err = PathOf("stderr");
    const std::string command =
        fmt::format("env -u TRIPLANE_JSON '{}' {} >'{}' 2>'{}'", TRIPLANE_BINARY, args, out, err);
    const int status = std::system(command.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out), ReadFile(err)};
  }

  std::string WriteModel() const {
    engine::GgufWriter writer;
    writer.SetString("general.architecture", "llama");
    writer.SetUint32("llama.context_length", 2048);
    std::vector<std::string> tokens;
    for (int i = 0; i < 100; ++i) tokens.push_back(fmt::format("tok{}", i));
    writer.SetStringArray("tokenizer.ggml.tokens", tokens);
    std::vector<std::byte> f32(4 * 64), q8(34 * 4);
    EXPECT_TRUE(writer.AddTensor("output_norm.weight", {64}, engine::GgmlType::kF32, f32).ok());
    EXPECT_TRUE(writer.AddTensor("blk.0.attn_q.weight", {64, 2}, engine::GgmlType::kQ8_0, q8).ok());
    const std::string path = PathOf("model.gguf");
    EXPECT_TRUE(writer.WriteTo(path).ok());
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(GgufCommandTest, InspectPrintsMetadataTensorsAndTotals) {
  const std::string path = WriteModel();
  const GgufRunResult result = Run(fmt::format("gguf inspect '{}'", path));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("version:    3"));
  EXPECT_THAT(result.out, HasSubstr("alignment:  32"));
  EXPECT_THAT(result.out, HasSubstr("\"llama\""));
  // Long arrays are summarised: type, length and the first few values.
  EXPECT_THAT(result.out, HasSubstr("arr[str]   100 items: [\"tok0\", \"tok1\""));
  EXPECT_THAT(result.out, Not(HasSubstr("tok99")));
  EXPECT_THAT(result.out, HasSubstr("blk.0.attn_q.weight"));
  EXPECT_THAT(result.out, HasSubstr("64 x 2"));
  EXPECT_THAT(result.out, HasSubstr("parameters: 192"));
  EXPECT_THAT(result.out, HasSubstr("q8_0"));
}

TEST_F(GgufCommandTest, InspectJsonHasEveryValueInFull) {
  const std::string path = WriteModel();
  const GgufRunResult result = Run(fmt::format("gguf inspect --json '{}'", path));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const nlohmann::json json = nlohmann::json::parse(result.out);
  EXPECT_EQ(json["version"], 3);
  EXPECT_EQ(json["parameters"], 192);
  ASSERT_EQ(json["metadata"].size(), 3u);
  EXPECT_EQ(json["metadata"][1]["key"], "llama.context_length");
  EXPECT_EQ(json["metadata"][1]["type"], "u32");
  EXPECT_EQ(json["metadata"][1]["value"], 2048);
  EXPECT_EQ(json["metadata"][2]["array_type"], "str");
  EXPECT_EQ(json["metadata"][2]["value"].size(), 100u);
  EXPECT_EQ(json["metadata"][2]["value"][99], "tok99");
  ASSERT_EQ(json["tensors"].size(), 2u);
  EXPECT_EQ(json["tensors"][1]["name"], "blk.0.attn_q.weight");
  EXPECT_EQ(json["tensors"][1]["type"], "q8_0");
  EXPECT_EQ(json["tensors"][1]["dims"], nlohmann::json::array({64, 2}));
  EXPECT_EQ(json["tensors"][1]["bytes"], 136);
  EXPECT_EQ(json["tensors"][1]["offset"], 256);
  EXPECT_EQ(json["types"]["f32"]["bytes"], 256);
}

TEST_F(GgufCommandTest, BadFileIsOneLineAndExitCodeOne) {
  const std::string path = PathOf("bad.gguf");
  const std::string version1("GGUF\x01\x00\x00\x00 and then nothing", 25);
  std::ofstream(path, std::ios::binary) << version1;
  GgufRunResult result = Run(fmt::format("gguf inspect '{}'", path));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("triplane gguf inspect: "));
  EXPECT_THAT(result.err, HasSubstr("version 1"));
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1);
  EXPECT_EQ(result.out, "");

  result = Run(fmt::format("gguf inspect '{}'", PathOf("missing.gguf")));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("missing.gguf"));
}

TEST_F(GgufCommandTest, GgufWithoutAToolIsAUsageError) {
  const GgufRunResult result = Run("gguf");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("subcommand"));
}

}  // namespace
}  // namespace triplane::cli
