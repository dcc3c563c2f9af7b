#include "engine/tokenizer/tokenizer.h"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "engine/tokenizer/byte_level.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triplane::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- SentencePiece ---------------------------------------------------------------------

constexpr TokenId kByte0 = 3;  // <0x00>; <0xNN> is kByte0 + NN
TokenId ByteToken(int b) { return kByte0 + b; }

// <unk> <s> </s>, 256 byte tokens, then normal pieces with scores and one added token.
Vocab SentencePieceVocab() {
  Vocab v{.type = VocabType::kSentencePiece, .bos = 1, .eos = 2, .unk = 0};
  auto add = [&](std::string text, TokenType type, float score) {
    v.tokens.push_back(std::move(text));
    v.types.push_back(type);
    v.scores.push_back(score);
    return static_cast<TokenId>(v.tokens.size() - 1);
  };
  add("<unk>", TokenType::kUnknown, 0);
  add("<s>", TokenType::kControl, 0);
  add("</s>", TokenType::kControl, 0);
  for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), TokenType::kByte, 0);
  add("\xE2\x96\x81", TokenType::kNormal, -1);  // 259 ▁
  add("a", TokenType::kNormal, -2);             // 260
  add("b", TokenType::kNormal, -2);             // 261
  add("c", TokenType::kNormal, -2);             // 262
  add("ab", TokenType::kNormal, -5);            // 263
  add("bc", TokenType::kNormal, -4);            // 264
  add("\xE2\x96\x81"
      "ab",
      TokenType::kNormal, -3);                // 265 ▁ab
  add("<tool>", TokenType::kUserDefined, 0);  // 266
  return v;
}

std::unique_ptr<Tokenizer> Make(Vocab vocab) {
  auto tokenizer = Tokenizer::Create(std::move(vocab));
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

TEST(SentencePieceTokenizerTest, MergesTheHighestScoringPairFirst) {
  auto tok = Make(SentencePieceVocab());
  // "bc" (-4) beats "ab" (-5), leaving "a" alone.
  EXPECT_THAT(tok->Encode("abc", {.add_special = false}), ElementsAre(260, 264));
}

TEST(SentencePieceTokenizerTest, FallsBackToByteTokensForUnknownCharacters) {
  auto tok = Make(SentencePieceVocab());
  EXPECT_THAT(tok->Encode("\xE4\xB8\xAD", {.add_special = false}),  // 中
              ElementsAre(ByteToken(0xE4), ByteToken(0xB8), ByteToken(0xAD)));
}

TEST(SentencePieceTokenizerTest, AddsSpacePrefixAndBosWhenTheVocabularySaysSo) {
  Vocab vocab = SentencePieceVocab();
  vocab.add_space_prefix = true;
  vocab.add_bos = true;
  auto tok = Make(std::move(vocab));
  EXPECT_THAT(tok->Encode("ab"), ElementsAre(1, 265));
  EXPECT_THAT(tok->Encode("ab", {.add_special = false}), ElementsAre(265));
  EXPECT_THAT(tok->Encode("", {.add_special = true}), ElementsAre(1));
  EXPECT_THAT(tok->Encode("", {.add_special = false}), ElementsAre());
}

TEST(SentencePieceTokenizerTest, ParsesControlTokensOnlyWithParseSpecial) {
  Vocab vocab = SentencePieceVocab();
  vocab.add_space_prefix = true;
  auto tok = Make(std::move(vocab));
  // Parsed: a space prefix again after the special token.
  EXPECT_THAT(tok->Encode("ab</s>ab", {.add_special = false, .parse_special = true}),
              ElementsAre(265, 2, 265));
  // Not parsed: "</s>" is plain text, here byte tokens; control pieces never come out of merges.
  const std::vector<TokenId> plain =
      tok->Encode("</s>", {.add_special = false, .parse_special = false});
  EXPECT_THAT(plain,
              ElementsAre(259, ByteToken('<'), ByteToken('/'), ByteToken('s'), ByteToken('>')));
}

TEST(SentencePieceTokenizerTest, MatchesUserDefinedTokensEvenWithoutParseSpecial) {
  auto tok = Make(SentencePieceVocab());
  EXPECT_THAT(tok->Encode("a<tool>b", {.add_special = false}), ElementsAre(260, 266, 261));
}

TEST(SentencePieceTokenizerTest, DecodeRemovesTheSpacePrefixAndSkipsSpecialTokens) {
  Vocab vocab = SentencePieceVocab();
  vocab.add_space_prefix = true;
  vocab.add_bos = true;
  vocab.add_eos = true;
  auto tok = Make(std::move(vocab));
  const std::vector<TokenId> ids = tok->Encode("ab \xE4\xB8\xAD");
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_EQ(tok->Decode(ids, /*skip_special=*/true), "ab \xE4\xB8\xAD");
  // Shown special tokens come first, so the prefix space stays (as Hugging Face decodes).
  EXPECT_EQ(tok->Decode(ids, /*skip_special=*/false), "<s> ab \xE4\xB8\xAD</s>");
}

TEST(SentencePieceTokenizerTest, DecodeReplacesBrokenUtf8) {
  auto tok = Make(SentencePieceVocab());
  const std::vector<TokenId> ids = {260, ByteToken(0xE4), ByteToken(0xB8), 261};
  EXPECT_EQ(tok->Decode(ids, true),
            "a\xEF\xBF\xBD"
            "b");
}

TEST(SentencePieceTokenizerTest, TokenPieceShowsBytesSpacesAndSpecialText) {
  auto tok = Make(SentencePieceVocab());
  EXPECT_EQ(tok->TokenPiece(ByteToken(0x41)), "A");
  EXPECT_EQ(tok->TokenPiece(265), " ab");
  EXPECT_EQ(tok->TokenPiece(1), "<s>");
  EXPECT_EQ(tok->TokenPiece(-1), "");
  EXPECT_EQ(tok->TokenPiece(100000), "");
  EXPECT_TRUE(tok->IsSpecial(0));
  EXPECT_TRUE(tok->IsSpecial(1));
  EXPECT_FALSE(tok->IsSpecial(266));
}

TEST(SentencePieceTokenizerTest, EncodesLongRepetitiveInputInLinearithmicTime) {
  auto tok = Make(SentencePieceVocab());
  const std::string text(200000, 'b');
  const std::vector<TokenId> ids = tok->Encode(text, {.add_special = false});
  EXPECT_EQ(ids.size(), 200000u);
}

// ---- Byte-level BPE --------------------------------------------------------------------

// Tokens 0-255 are the byte-level characters of bytes 0-255; merges are added in rank
// order, each adding its result as a token.
struct BpeVocabBuilder {
  Vocab vocab{.type = VocabType::kByteLevelBpe, .pre = PreTokenizerType::kGpt2};
  BpeVocabBuilder() {
    for (int b = 0; b < 256; ++b)
      vocab.tokens.push_back(ByteLevelEncode(std::string(1, static_cast<char>(b))));
  }
  TokenId Merge(std::string_view left, std::string_view right) {
    const std::string l = ByteLevelEncode(left), r = ByteLevelEncode(right);
    vocab.merges.push_back(l + " " + r);
    return Add(l + r);
  }
  TokenId Add(std::string text, TokenType type = TokenType::kNormal) {
    vocab.tokens.push_back(std::move(text));
    vocab.types.resize(vocab.tokens.size() - 1, TokenType::kNormal);
    vocab.types.push_back(type);
    return static_cast<TokenId>(vocab.tokens.size() - 1);
  }
  Vocab Build() {
    vocab.types.resize(vocab.tokens.size(), TokenType::kNormal);
    return vocab;
  }
};

TEST(ByteLevelBpeTokenizerTest, AppliesTheLowestRankedMergeFirst) {
  BpeVocabBuilder a;
  const TokenId ab = a.Merge("a", "b");
  a.Merge("b", "c");
  EXPECT_THAT(Make(a.Build())->Encode("abc", {.add_special = false}), ElementsAre(ab, 'c'));

  BpeVocabBuilder b;
  b.Merge("a", "x");  // unrelated rank 0
  const TokenId bc = b.Merge("b", "c");
  b.Merge("a", "b");
  EXPECT_THAT(Make(b.Build())->Encode("abc", {.add_special = false}), ElementsAre('a', bc));
}

TEST(ByteLevelBpeTokenizerTest, BreaksTiesLeftmostFirst) {
  BpeVocabBuilder v;
  const TokenId aa = v.Merge("a", "a");
  EXPECT_THAT(Make(v.Build())->Encode("aaa", {.add_special = false}), ElementsAre(aa, 'a'));
}

TEST(ByteLevelBpeTokenizerTest, MergesWithinPreTokenizedWordsOnly) {
  BpeVocabBuilder v;
  const TokenId space_a = v.Merge(" ", "a");
  const TokenId aa = v.Merge("a", "a");
  // GPT-2 splits "aa aa" into "aa" and " aa"; " a" ranks first in the second word.
  EXPECT_THAT(Make(v.Build())->Encode("aa aa", {.add_special = false}),
              ElementsAre(aa, space_a, 'a'));
}

TEST(ByteLevelBpeTokenizerTest, IgnoreMergesTakesWholeWordTokens) {
  BpeVocabBuilder v;
  const TokenId hello = v.Add(ByteLevelEncode("hello"));
  Vocab plain = v.Build();
  EXPECT_THAT(Make(plain)->Encode("hello", {.add_special = false}),
              ElementsAre('h', 'e', 'l', 'l', 'o'));
  plain.ignore_merges = true;
  EXPECT_THAT(Make(plain)->Encode("hello", {.add_special = false}), ElementsAre(hello));
}

TEST(ByteLevelBpeTokenizerTest, EncodesEveryByteAndDecodesBackExactly) {
  auto tok = Make(BpeVocabBuilder().Build());
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::vector<TokenId> ids = tok->Encode(all, {.add_special = false});
  ASSERT_EQ(ids.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(ids[static_cast<size_t>(b)], b);
  std::string pieces;
  for (TokenId id : ids) pieces += tok->TokenPiece(id);
  EXPECT_EQ(pieces, all);
}

TEST(ByteLevelBpeTokenizerTest, SpecialTokensAndEndOfGeneration) {
  BpeVocabBuilder v;
  const TokenId end = v.Add("<|end|>", TokenType::kControl);
  const TokenId eot = v.Add("<|eot|>", TokenType::kControl);
  const TokenId tool = v.Add("<tool>", TokenType::kUserDefined);
  Vocab vocab = v.Build();
  vocab.bos = end;
  vocab.eos = end;
  vocab.eog = {eot};
  vocab.add_bos = true;
  auto tok = Make(std::move(vocab));
  EXPECT_THAT(tok->Encode("x<|eot|>", {.add_special = true, .parse_special = true}),
              ElementsAre(end, 'x', eot));
  EXPECT_THAT(tok->Encode("<tool>", {.add_special = false, .parse_special = false}),
              ElementsAre(tool));
  EXPECT_EQ(tok->Encode("<|eot|>", {.add_special = false, .parse_special = false}).size(),
            7u);  // its bytes
  EXPECT_TRUE(tok->IsEog(end));
  EXPECT_TRUE(tok->IsEog(eot));
  EXPECT_FALSE(tok->IsEog(tool));
  EXPECT_FALSE(tok->IsEog(-1));
  EXPECT_EQ(tok->Decode(std::vector<TokenId>{end, 'h', 'i', tool, eot}, true), "hi<tool>");
}

TEST(ByteLevelBpeTokenizerTest, PrefersTheLongestSpecialTokenAtAPosition) {
  BpeVocabBuilder v;
  const TokenId short_token = v.Add("<a>", TokenType::kControl);
  const TokenId long_token = v.Add("<a>b", TokenType::kControl);
  auto tok = Make(v.Build());
  EXPECT_THAT(tok->Encode("<a>b<a>", {.add_special = false, .parse_special = true}),
              ElementsAre(long_token, short_token));
}

TEST(ByteLevelBpeTokenizerTest, EncodesALongWordInLinearithmicTime) {
  BpeVocabBuilder v;
  v.Merge("a", "a");
  v.Merge("aa", "aa");
  auto tok = Make(v.Build());
  const std::vector<TokenId> ids = tok->Encode(std::string(100001, 'a'), {.add_special = false});
  EXPECT_EQ(ids.size(), 25001u);
}

// ---- Validation ------------------------------------------------------------------------

std::string CreateError(Vocab vocab) {
  auto tokenizer = Tokenizer::Create(std::move(vocab));
  EXPECT_FALSE(tokenizer.ok());
  return tokenizer.ok() ? "" : std::string(tokenizer.status().message());
}

TEST(TokenizerCreateTest, RejectsInconsistentVocabularies) {
  EXPECT_THAT(CreateError(Vocab{}), HasSubstr("no tokens"));
  Vocab scores = BpeVocabBuilder().Build();
  scores.scores = {1.0f};
  EXPECT_THAT(CreateError(scores), HasSubstr("scores"));
  Vocab bos = BpeVocabBuilder().Build();
  bos.bos = 256;
  EXPECT_THAT(CreateError(bos), HasSubstr("bos token id 256 out of range"));
  Vocab add_bos = BpeVocabBuilder().Build();
  add_bos.add_bos = true;
  EXPECT_THAT(CreateError(add_bos), HasSubstr("BOS"));
  Vocab merge = BpeVocabBuilder().Build();
  merge.merges = {"ab"};
  EXPECT_THAT(CreateError(merge), HasSubstr("no space"));
  Vocab eog = BpeVocabBuilder().Build();
  eog.eog = {-5};
  EXPECT_THAT(CreateError(eog), HasSubstr("out of range"));
}

}  // namespace
}  // namespace triplane::engine
