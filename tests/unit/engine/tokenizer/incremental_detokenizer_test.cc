#include "engine/tokenizer/incremental_detokenizer.h"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "engine/tokenizer/unicode.h"
#include "gtest/gtest.h"
#include "tokenizer_test_data.h"

namespace triplane::engine {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// <unk> <s> </s> and the 256 SentencePiece byte tokens, then "a" (259).
std::unique_ptr<Tokenizer> ByteTokenizer() {
  Vocab v{.type = VocabType::kSentencePiece, .bos = 1, .eos = 2, .unk = 0};
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl};
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(fmt::format("<0x{:02X}>", b));
    v.types.push_back(TokenType::kByte);
  }
  v.tokens.push_back("a");
  v.types.push_back(TokenType::kNormal);
  auto tokenizer = Tokenizer::Create(std::move(v));
  EXPECT_TRUE(tokenizer.ok());
  return *std::move(tokenizer);
}
TokenId Byte(int b) { return 3 + b; }

TEST(IncrementalDetokenizerTest, HoldsBackASplitCharacterUntilItsLastByte) {
  auto tok = ByteTokenizer();
  IncrementalDetokenizer detok(*tok);
  EXPECT_EQ(detok.Push(259), "a");
  EXPECT_EQ(detok.Push(Byte(0xE4)), "");
  EXPECT_EQ(detok.pending_bytes(), 1u);
  EXPECT_EQ(detok.Push(Byte(0xB8)), "");
  EXPECT_EQ(detok.Push(Byte(0xAD)), "\xE4\xB8\xAD");
  EXPECT_EQ(detok.pending_bytes(), 0u);
  EXPECT_EQ(detok.Push(Byte(0xF0)), "");
  EXPECT_EQ(detok.Push(Byte(0x9F)), "");
  EXPECT_EQ(detok.Push(Byte(0xA6)), "");
  EXPECT_EQ(detok.Push(Byte(0x99)), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(detok.Flush(), "");
}

TEST(IncrementalDetokenizerTest, FlushTurnsAnIncompleteTailIntoAReplacementCharacter) {
  auto tok = ByteTokenizer();
  IncrementalDetokenizer detok(*tok);
  EXPECT_EQ(detok.Push(Byte(0xE4)), "");
  EXPECT_EQ(detok.Push(Byte(0xB8)), "");
  EXPECT_EQ(detok.Flush(), kReplacement);
  EXPECT_EQ(detok.Flush(), "");
}

TEST(IncrementalDetokenizerTest, ReplacesBytesThatCanNeverFormACharacterAtOnce) {
  auto tok = ByteTokenizer();
  IncrementalDetokenizer detok(*tok);
  EXPECT_EQ(detok.Push(Byte(0x80)), kReplacement);  // a lone continuation byte
  EXPECT_EQ(detok.Push(Byte(0xE4)), "");
  EXPECT_EQ(detok.Push(259), fmt::format("{}a", kReplacement));  // interrupted sequence
  EXPECT_EQ(detok.Push(Byte(0xC0)), kReplacement);               // never valid in UTF-8
}

TEST(IncrementalDetokenizerTest, SkipsSpecialTokensUnlessAskedNotTo) {
  auto tok = ByteTokenizer();
  IncrementalDetokenizer skipping(*tok);
  EXPECT_EQ(skipping.Push(2), "");
  IncrementalDetokenizer showing(*tok, {.skip_special = false});
  EXPECT_EQ(showing.Push(2), "</s>");
}

// Streams real byte-level tokens (Qwen 2's vocabulary cuts Chinese and emoji inside
// characters): every chunk is valid UTF-8 and the chunks add up to the text.
TEST(IncrementalDetokenizerTest, StreamsByteLevelTokensAsValidUtf8) {
  auto tok = testing::LoadTokenizer(testing::LlamaCppVocabPath("qwen2"));
  ASSERT_TRUE(tok.ok()) << tok.status();
  const std::string text =
      "什么是量子计算? 🦙🦙 👨‍👩‍👧 Ünïcödé ﷽ 𝔘𝔫𝔦";
  const std::vector<TokenId> ids = (*tok)->Encode(text, {.add_special = false});
  IncrementalDetokenizer detok(**tok);
  std::string streamed;
  int held = 0;
  for (TokenId id : ids) {
    const std::string chunk = detok.Push(id);
    EXPECT_TRUE(IsValidUtf8(chunk)) << "token " << id;
    if (detok.pending_bytes() > 0) ++held;
    streamed += chunk;
  }
  streamed += detok.Flush();
  EXPECT_EQ(streamed, text);
  EXPECT_GT(held, 0) << "the text should cut some character across tokens";
}

}  // namespace
}  // namespace triplane::engine
