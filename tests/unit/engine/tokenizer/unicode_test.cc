#include "engine/tokenizer/unicode.h"

#include <string>

#include "engine/tokenizer/byte_level.h"
#include "gtest/gtest.h"

namespace triplane::engine {
namespace {

using Kind = Utf8Sequence::Kind;

TEST(UnicodeTest, ReadsValidSequences) {
  const Utf8Sequence han = ReadUtf8("\xE4\xB8\xAD", 0);
  EXPECT_EQ(han.kind, Kind::kValid);
  EXPECT_EQ(han.size, 3u);
  EXPECT_EQ(han.cp, U'中');
  EXPECT_EQ(ReadUtf8("\xF0\x9F\xA6\x99", 0).cp, U'🦙');
}

TEST(UnicodeTest, TellsIncompleteFromInvalid) {
  EXPECT_EQ(ReadUtf8("\xE4\xB8", 0).kind, Kind::kIncomplete);
  const Utf8Sequence cut = ReadUtf8("\xE4\xB8x", 0);
  EXPECT_EQ(cut.kind, Kind::kInvalid);
  EXPECT_EQ(cut.size, 2u);
  EXPECT_EQ(ReadUtf8("\x80", 0).kind, Kind::kInvalid);
  EXPECT_EQ(ReadUtf8("\xC0\x80", 0).kind, Kind::kInvalid);          // overlong
  EXPECT_EQ(ReadUtf8("\xED\xA0\x80", 0).kind, Kind::kInvalid);      // surrogate
  EXPECT_EQ(ReadUtf8("\xF4\x90\x80\x80", 0).kind, Kind::kInvalid);  // > U+10FFFF
}

TEST(UnicodeTest, ToValidUtf8ReplacesMaximalSubparts) {
  EXPECT_EQ(ToValidUtf8("a\xE4\xB8"
                        "b\xFF"),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
  EXPECT_TRUE(IsValidUtf8("plain \xE4\xB8\xAD"));
  EXPECT_FALSE(IsValidUtf8("\xE4\xB8"));
}

TEST(UnicodeTest, ClassifiesWithUnicodeProperties) {
  EXPECT_EQ(ClassifyCodePoint('a'), CharClass::kLetter);
  EXPECT_EQ(ClassifyCodePoint(U'中'), CharClass::kLetter);
  EXPECT_EQ(ClassifyCodePoint('7'), CharClass::kNumber);
  EXPECT_EQ(ClassifyCodePoint(U'Ⅻ'), CharClass::kNumber);
  EXPECT_EQ(ClassifyCodePoint(0x3000), CharClass::kWhitespace);
  EXPECT_EQ(ClassifyCodePoint(0x85), CharClass::kWhitespace);
  EXPECT_EQ(ClassifyCodePoint(0x200B), CharClass::kOther);  // zero width space is not \s
  EXPECT_EQ(ClassifyCodePoint(U'🦙'), CharClass::kOther);
  EXPECT_TRUE(IsPunctuation(U'。'));
  EXPECT_FALSE(IsPunctuation('$'));
}

TEST(UnicodeTest, NfcComposesDecomposedText) {
  std::string out;
  AppendNfc("e\xCC\x81", out);
  EXPECT_EQ(out, "\xC3\xA9");
  out.clear();
  AppendNfc("\xFF keeps invalid", out);
  EXPECT_EQ(out, "\xFF keeps invalid");
}

TEST(ByteLevelTest, MapsEveryByteToOneCharacterAndBack) {
  EXPECT_EQ(ByteLevelChar(' '), U'Ġ');
  EXPECT_EQ(ByteLevelChar('\n'), U'Ċ');
  EXPECT_EQ(ByteLevelChar('a'), U'a');
  std::string all;
  for (int b = 0; b < 256; ++b) {
    all.push_back(static_cast<char>(b));
    const auto back = ByteLevelByte(ByteLevelChar(static_cast<uint8_t>(b)));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, b);
  }
  EXPECT_EQ(ByteLevelDecode(ByteLevelEncode(all)), all);
  EXPECT_FALSE(ByteLevelByte(U'中').has_value());
}

}  // namespace
}  // namespace triplane::engine
