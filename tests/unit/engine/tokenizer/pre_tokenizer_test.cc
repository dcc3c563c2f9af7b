#include "engine/tokenizer/pre_tokenizer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triplane::engine {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Split(std::string_view text, PreTokenizerType type) {
  std::vector<std::string> out;
  for (std::string_view piece : PreTokenize(text, type)) out.emplace_back(piece);
  return out;
}

TEST(PreTokenizerTest, Gpt2SplitsWordsNumbersPunctuationAndSpaces) {
  EXPECT_THAT(Split("Hello world, it's 2024!!  ok  ", PreTokenizerType::kGpt2),
              ElementsAre("Hello", " world", ",", " it", "'s", " 2024", "!!", " ", " ok", "  "));
  // GPT-2's contractions are case-sensitive.
  EXPECT_THAT(Split("IT'S", PreTokenizerType::kGpt2), ElementsAre("IT", "'", "S"));
}

TEST(PreTokenizerTest, Llama3GroupsDigitsByThreeAndKeepsNewlineRuns) {
  EXPECT_THAT(Split("1234567 IT'S\n\n  x", PreTokenizerType::kLlama3),
              ElementsAre("123", "456", "7", " IT", "'S", "\n\n", " ", " x"));
  EXPECT_THAT(Split("a.\n\nb", PreTokenizerType::kLlama3), ElementsAre("a", ".\n\n", "b"));
  EXPECT_THAT(Split("\tword", PreTokenizerType::kLlama3), ElementsAre("\tword"));
}

TEST(PreTokenizerTest, Qwen2SplitsEveryDigit) {
  EXPECT_THAT(Split("x123", PreTokenizerType::kQwen2), ElementsAre("x", "1", "2", "3"));
}

TEST(PreTokenizerTest, UsesUnicodeLettersNumbersAndSpaces) {
  // Chinese letters, a full-width digit (\p{N}), an ideographic space (\s).
  EXPECT_THAT(Split("什么是\xE3\x80\x80量子\xEF\xBC\x91", PreTokenizerType::kLlama3),
              ElementsAre("什么是", "\xE3\x80\x80量子", "\xEF\xBC\x91"));
}

TEST(PreTokenizerTest, DefaultSplitsPunctuationThenNumbersThenDigitTriples) {
  EXPECT_THAT(Split("ab, 12345!", PreTokenizerType::kDefault),
              ElementsAre("ab", ",", " ", "123", "45", "!"));
}

TEST(PreTokenizerTest, PiecesCoverTheInputExactly) {
  const std::string text = "  mixed \xF0\x9F\xA6\x99 text\r\n\t 42\xFF\xFEtail  ";
  for (auto type : {PreTokenizerType::kDefault, PreTokenizerType::kGpt2, PreTokenizerType::kLlama3,
                    PreTokenizerType::kQwen2}) {
    std::string joined;
    for (std::string_view piece : PreTokenize(text, type)) {
      EXPECT_FALSE(piece.empty());
      joined += piece;
    }
    EXPECT_EQ(joined, text);
  }
  EXPECT_TRUE(PreTokenize("", PreTokenizerType::kGpt2).empty());
}

}  // namespace
}  // namespace triplane::engine
