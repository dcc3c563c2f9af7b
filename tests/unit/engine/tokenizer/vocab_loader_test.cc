#include "engine/tokenizer/vocab_loader.h"

#include <memory>
#include <string>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triplane::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Writes `writer` to memory and loads the vocabulary from it.
absl::StatusOr<Vocab> Load(const GgufWriter& writer) {
  auto bytes = writer.WriteToBuffer();
  if (!bytes.ok()) return bytes.status();
  auto file = GgufFile::FromBuffer(*bytes);
  if (!file.ok()) return file.status();
  return LoadVocab(**file);
}

void SentencePieceKeys(GgufWriter& w) {
  w.SetString("tokenizer.ggml.model", "llama");
  const std::vector<std::string> tokens = {"<unk>", "<s>", "</s>",
                                           "\xE2\x96\x81"
                                           "a"};
  w.SetStringArray("tokenizer.ggml.tokens", std::span<const std::string>(tokens));
  w.SetArray<float>("tokenizer.ggml.scores", std::vector<float>{0, 0, 0, -1.5f});
  w.SetArray<int32_t>("tokenizer.ggml.token_type", std::vector<int32_t>{2, 3, 3, 1});
}

void ByteLevelKeys(GgufWriter& w, std::string_view pre) {
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetString("tokenizer.ggml.pre", pre);
  const std::vector<std::string> tokens = {"a", "b", "ab", "<|begin_of_text|>", "<|eot_id|>"};
  w.SetStringArray("tokenizer.ggml.tokens", std::span<const std::string>(tokens));
  w.SetArray<int32_t>("tokenizer.ggml.token_type", std::vector<int32_t>{1, 1, 1, 3, 3});
  const std::vector<std::string> merges = {"a b"};
  w.SetStringArray("tokenizer.ggml.merges", std::span<const std::string>(merges));
}

TEST(VocabLoaderTest, SentencePieceGetsLlamaDefaultsForAbsentKeys) {
  GgufWriter w;
  SentencePieceKeys(w);
  auto vocab = Load(w);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  EXPECT_EQ(vocab->type, VocabType::kSentencePiece);
  EXPECT_THAT(vocab->tokens, ElementsAre("<unk>", "<s>", "</s>",
                                         "\xE2\x96\x81"
                                         "a"));
  EXPECT_THAT(vocab->scores, ElementsAre(0, 0, 0, -1.5f));
  EXPECT_THAT(vocab->types, ElementsAre(TokenType::kUnknown, TokenType::kControl,
                                        TokenType::kControl, TokenType::kNormal));
  EXPECT_EQ(vocab->unk, 0);
  EXPECT_EQ(vocab->bos, 1);
  EXPECT_EQ(vocab->eos, 2);
  EXPECT_TRUE(vocab->add_bos);
  EXPECT_FALSE(vocab->add_eos);
  EXPECT_TRUE(vocab->add_space_prefix);
}

TEST(VocabLoaderTest, MetadataOverridesDefaults) {
  GgufWriter w;
  SentencePieceKeys(w);
  w.SetUint32("tokenizer.ggml.bos_token_id", 2);
  w.SetUint32("tokenizer.ggml.eos_token_id", 1);
  w.SetBool("tokenizer.ggml.add_bos_token", false);
  w.SetBool("tokenizer.ggml.add_eos_token", true);
  w.SetBool("tokenizer.ggml.add_space_prefix", false);
  auto vocab = Load(w);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  EXPECT_EQ(vocab->bos, 2);
  EXPECT_EQ(vocab->eos, 1);
  EXPECT_FALSE(vocab->add_bos);
  EXPECT_TRUE(vocab->add_eos);
  EXPECT_FALSE(vocab->add_space_prefix);
}

TEST(VocabLoaderTest, ByteLevelVocabularyFollowsItsPreTokenizer) {
  GgufWriter w;
  ByteLevelKeys(w, "llama-bpe");
  w.SetUint32("tokenizer.ggml.bos_token_id", 3);
  auto llama3 = Load(w);
  ASSERT_TRUE(llama3.ok()) << llama3.status();
  EXPECT_EQ(llama3->type, VocabType::kByteLevelBpe);
  EXPECT_EQ(llama3->pre, PreTokenizerType::kLlama3);
  EXPECT_THAT(llama3->merges, ElementsAre("a b"));
  EXPECT_TRUE(llama3->ignore_merges);
  EXPECT_TRUE(llama3->add_bos);
  EXPECT_EQ(llama3->bos, 3);
  EXPECT_EQ(llama3->eos, kNoToken);
  EXPECT_THAT(llama3->eog, ElementsAre(4));  // <|eot_id|> by its text

  GgufWriter q;
  ByteLevelKeys(q, "qwen2");
  auto qwen = Load(q);
  ASSERT_TRUE(qwen.ok()) << qwen.status();
  EXPECT_EQ(qwen->pre, PreTokenizerType::kQwen2);
  EXPECT_TRUE(qwen->normalize_nfc);
  EXPECT_FALSE(qwen->add_bos);
  EXPECT_FALSE(qwen->add_space_prefix);
}

std::string LoadError(const GgufWriter& w) {
  auto vocab = Load(w);
  EXPECT_FALSE(vocab.ok());
  return vocab.ok() ? "" : std::string(vocab.status().message());
}

TEST(VocabLoaderTest, RejectsMissingOrMalformedMetadata) {
  GgufWriter empty;
  EXPECT_THAT(LoadError(empty), HasSubstr("tokenizer.ggml.model is missing"));

  GgufWriter t5;
  SentencePieceKeys(t5);
  t5.SetString("tokenizer.ggml.model", "t5");
  EXPECT_THAT(LoadError(t5), HasSubstr("unsupported tokenizer.ggml.model 't5'"));

  GgufWriter pre;
  ByteLevelKeys(pre, "no-such-pre");
  EXPECT_THAT(LoadError(pre), HasSubstr("unsupported pre-tokenizer 'no-such-pre'"));

  GgufWriter bos;
  SentencePieceKeys(bos);
  bos.SetUint32("tokenizer.ggml.bos_token_id", 4);
  EXPECT_THAT(LoadError(bos), HasSubstr("bos_token_id = 4 is outside"));

  GgufWriter scores;
  SentencePieceKeys(scores);
  scores.SetArray<float>("tokenizer.ggml.scores", std::vector<float>{0});
  EXPECT_THAT(LoadError(scores), HasSubstr("scores has 1 entries for 4 tokens"));

  GgufWriter merges;
  ByteLevelKeys(merges, "gpt-2");
  merges.RemoveKey("tokenizer.ggml.merges");
  EXPECT_THAT(LoadError(merges), HasSubstr("tokenizer.ggml.merges"));

  GgufWriter tokens;
  SentencePieceKeys(tokens);
  tokens.SetString("tokenizer.ggml.tokens", "not an array");
  EXPECT_THAT(LoadError(tokens), HasSubstr("tokenizer.ggml.tokens"));
}

}  // namespace
}  // namespace triplane::engine
