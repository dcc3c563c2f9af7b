#include "engine/chat/jinja_lexer.h"

#include <string>
#include <vector>

#include "common/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triplane::engine::chat::jinja {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// "kind:text" per token, without the final kEnd.
std::vector<std::string> Describe(std::string_view source) {
  absl::StatusOr<LexedTemplate> lexed = Tokenize(source);
  if (!lexed.ok()) return {"error: " + std::string(common::ToStd(lexed.status().message()))};
  std::vector<std::string> out;
  for (const Token& t : lexed->tokens) {
    switch (t.kind) {
      case TokenKind::kText: out.push_back("text:" + t.text); break;
      case TokenKind::kExprBegin: out.push_back("{{"); break;
      case TokenKind::kExprEnd: out.push_back("}}"); break;
      case TokenKind::kBlockBegin: out.push_back("{%"); break;
      case TokenKind::kBlockEnd: out.push_back("%}"); break;
      case TokenKind::kName: out.push_back("name:" + t.text); break;
      case TokenKind::kString: out.push_back("str:" + t.text); break;
      case TokenKind::kInt: out.push_back("int:" + t.text); break;
      case TokenKind::kFloat: out.push_back("float:" + t.text); break;
      case TokenKind::kOperator: out.push_back("op:" + t.text); break;
      case TokenKind::kEnd: break;
    }
  }
  return out;
}

TEST(JinjaLexerTest, SplitsTextAndTags) {
  EXPECT_THAT(Describe("Hi {{ name }}!{% if x %}"),
              ElementsAre("text:Hi ", "{{", "name:name", "}}", "text:!", "{%", "name:if", "name:x", "%}"));
}

TEST(JinjaLexerTest, LexesLiteralsAndOperators) {
  EXPECT_THAT(Describe("{{ 1_000 2.5 1e3 'a\\'b' x.0 a//b**c != d }}"),
              ElementsAre("{{", "int:1000", "float:2.5", "float:1e3", "str:a'b", "name:x", "op:.", "int:0",
                          "name:a", "op://", "name:b", "op:**", "name:c", "op:!=", "name:d", "}}"));
}

TEST(JinjaLexerTest, ClosingBracesInsideADictDoNotEndTheExpression) {
  EXPECT_THAT(Describe("{{ {'a': {'b': 1}} }}"),
              ElementsAre("{{", "op:{", "str:a", "op::", "op:{", "str:b", "op::", "int:1", "op:}", "op:}", "}}"));
}

TEST(JinjaLexerTest, AppliesTrimBlocksAndLstripBlocks) {
  EXPECT_THAT(Describe("a\n    {% x %}\n  b\n  {{ y }}\n"),
              ElementsAre("text:a\n", "{%", "name:x", "%}", "text:  b\n  ", "{{", "name:y", "}}"));
}

TEST(JinjaLexerTest, MinusStripsAndPlusKeepsWhitespace) {
  EXPECT_THAT(Describe("a \n{%- x -%}\n b"), ElementsAre("text:a", "{%", "name:x", "%}", "text:b"));
  EXPECT_THAT(Describe("a\n  {%+ x +%}\nb"), ElementsAre("text:a\n  ", "{%", "name:x", "%}", "text:\nb"));
}

TEST(JinjaLexerTest, RawBlocksAreText) {
  EXPECT_THAT(Describe("{% raw %}{{ x }}{% endraw %}"), ElementsAre("text:{{ x }}"));
}

TEST(JinjaLexerTest, ReportsLineAndColumnOfErrors) {
  EXPECT_THAT(Describe("ok\n  {{ 'open"), ElementsAre(HasSubstr("line 2, column 6: unterminated string")));
  EXPECT_THAT(Describe("{{ a ! b }}"), ElementsAre(HasSubstr("line 1, column 6: unexpected character '!'")));
  EXPECT_THAT(Describe("{# never closed"), ElementsAre(HasSubstr("line 1, column 1: unterminated comment")));
  EXPECT_THAT(Describe("{{ x"), ElementsAre(HasSubstr("unterminated '{{'")));
  EXPECT_THAT(Describe("{{ (x] }}"), ElementsAre(HasSubstr("unexpected ']'")));
}

TEST(JinjaLexerTest, ColumnsCountCodePoints) {
  EXPECT_EQ(DescribePosition("什么\n量子x", 11), "line 2, column 3");
}

}  // namespace
}  // namespace triplane::engine::chat::jinja
