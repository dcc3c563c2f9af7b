// llama.cpp's tokenizer test vectors (tests/test-tokenizer-0.cpp's data): for each
// vocabulary, every input in models/ggml-vocab-<name>.gguf.inp must encode (no BOS/EOS,
// special tokens not parsed) to the ids on the matching line of .gguf.out.

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tokenizer_test_data.h"

namespace triplane::engine {
namespace {

using testing::LlamaCppVocabPath;
using testing::LoadTokenizer;

struct Vector {
  std::string text;
  std::vector<TokenId> ids;
};

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Inputs are separated by "\n__ggml_vocab_test__\n"; outputs are one line of ids each.
std::vector<Vector> ReadVectors(const std::filesystem::path& gguf) {
  const std::string inputs = ReadFile(gguf.string() + ".inp");
  const std::string outputs = ReadFile(gguf.string() + ".out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inputs.size();) {
    const size_t next = inputs.find(separator, pos);
    if (next == std::string::npos) {
      texts.push_back(inputs.substr(pos));
      break;
    }
    texts.push_back(inputs.substr(pos, next - pos));
    pos = next + separator.size();
  }
  std::vector<Vector> vectors;
  std::istringstream lines(outputs);
  std::string line;
  for (size_t i = 0; std::getline(lines, line); ++i) {
    Vector v{.text = i < texts.size() ? texts[i] : std::string()};
    std::istringstream ids(line);
    for (TokenId id; ids >> id;) v.ids.push_back(id);
    vectors.push_back(std::move(v));
  }
  EXPECT_EQ(texts.size(), vectors.size()) << "inputs and outputs of " << gguf << " do not pair up";
  return vectors;
}

std::string Describe(const Tokenizer& tokenizer, const std::vector<TokenId>& ids) {
  std::string out;
  for (TokenId id : ids) out += fmt::format("{} '{}', ", id, tokenizer.TokenPiece(id));
  return out;
}

class LlamaCppVectorsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LlamaCppVectorsTest, EveryVectorEncodesToTheExpectedIds) {
  const std::filesystem::path path = LlamaCppVocabPath(GetParam());
  auto tokenizer = LoadTokenizer(path);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::vector<Vector> vectors = ReadVectors(path);
  ASSERT_GE(vectors.size(), 40u);
  int failed = 0;
  for (const Vector& v : vectors) {
    const std::vector<TokenId> ids =
        (*tokenizer)->Encode(v.text, {.add_special = false, .parse_special = false});
    if (ids != v.ids) {
      ++failed;
      ADD_FAILURE() << "input '" << v.text << "'\n  expected " << Describe(**tokenizer, v.ids)
                    << "\n  got      " << Describe(**tokenizer, ids);
    }
  }
  EXPECT_EQ(failed, 0) << failed << " of " << vectors.size() << " vectors differ";
}

TEST_P(LlamaCppVectorsTest, DecodingTheExpectedIdsGivesBackTheInput) {
  const std::filesystem::path path = LlamaCppVocabPath(GetParam());
  auto tokenizer = LoadTokenizer(path);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  for (const Vector& v : ReadVectors(path)) {
    // Inputs that are valid UTF-8 survive the round trip byte for byte.
    if (!IsValidUtf8(v.text)) continue;
    EXPECT_EQ((*tokenizer)->Decode(v.ids, /*skip_special=*/false), v.text);
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, LlamaCppVectorsTest,
                         ::testing::Values("llama-spm", "llama-bpe", "qwen2", "gpt-2"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace triplane::engine

namespace triplane::engine {
namespace {

// A chat-sized prompt (about 4k tokens of mixed prose, code and Chinese) must encode in a
// few milliseconds; the bound is loose for sanitizer builds and loaded machines.
TEST(TokenizerSpeedTest, EncodesA4kTokenPromptQuickly) {
  for (const char* name : {"llama-spm", "llama-bpe", "qwen2"}) {
    auto tokenizer = testing::LoadTokenizer(testing::LlamaCppVocabPath(name));
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    std::string prompt;
    while (prompt.size() < 16000) {
      prompt +=
          "The quick brown fox jumps over the lazy dog. def f(x):\n    return x * 2  # 量子计算 "
          "12345\n";
    }
    const auto start = std::chrono::steady_clock::now();
    const std::vector<TokenId> ids = (*tokenizer)->Encode(prompt, {.add_special = true});
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: %zu bytes -> %zu tokens in %.2f ms\n", name, prompt.size(), ids.size(), ms);
    EXPECT_GT(ids.size(), 3000u);
    EXPECT_LT(ms, 250.0) << name;
  }
}

}  // namespace
}  // namespace triplane::engine
