#include "engine/chat/jinja_parser.h"

#include <string>

#include "common/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace triplane::engine::chat::jinja {
namespace {

using ::testing::HasSubstr;

std::string ParseError(std::string_view source) {
  absl::StatusOr<std::unique_ptr<const Template>> tmpl = ParseTemplate(source);
  if (tmpl.ok()) return "parsed";
  EXPECT_EQ(tmpl.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(common::ToStd(tmpl.status().message()));
}

TEST(JinjaParserTest, BuildsStatementsWithPrecedence) {
  absl::StatusOr<std::unique_ptr<const Template>> tmpl = ParseTemplate("a{{ 1 + 2 * 3 }}{% if x %}b{% endif %}");
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  const StmtList& body = (*tmpl)->body;
  ASSERT_EQ(body.size(), 3u);
  EXPECT_EQ(body[0]->kind, StmtKind::kText);
  ASSERT_EQ(body[1]->kind, StmtKind::kOutput);
  const auto& sum = static_cast<const BinaryExpr&>(*static_cast<const OutputStmt&>(*body[1]).expr);
  EXPECT_EQ(sum.op, BinaryOp::kAdd);
  ASSERT_EQ(sum.right->kind, ExprKind::kBinary);
  EXPECT_EQ(static_cast<const BinaryExpr&>(*sum.right).op, BinaryOp::kMul);
  EXPECT_EQ(body[2]->kind, StmtKind::kIf);
}

TEST(JinjaParserTest, ReportsSyntaxErrorsWithPosition) {
  EXPECT_THAT(ParseError("{% if x %}\nno end"), HasSubstr("missing {% endif %}"));
  EXPECT_THAT(ParseError("ok\n{% endfor %}"), HasSubstr("line 2, column 4: unexpected 'endfor'"));
  EXPECT_THAT(ParseError("{{ 1 + }}"), HasSubstr("line 1, column 8: expected an expression, got '}}'"));
  EXPECT_THAT(ParseError("{% frobnicate %}"), HasSubstr("unknown tag 'frobnicate'"));
  EXPECT_THAT(ParseError("{% for x in y %}{% endif %}"), HasSubstr("unexpected 'endif'"));
  EXPECT_THAT(ParseError("{% break %}"), HasSubstr("'break' outside of a loop"));
  EXPECT_THAT(ParseError("{{ f(a=1, 2) }}"), HasSubstr("positional argument follows keyword argument"));
  EXPECT_THAT(ParseError("{{ x is defined is defined }}"), HasSubstr("tests cannot be chained"));
}

TEST(JinjaParserTest, UnknownFiltersAndTestsFailAtParseTimeOutsideConditionals) {
  EXPECT_THAT(ParseError("{{ x|from_json }}"), HasSubstr("no filter named 'from_json'"));
  EXPECT_THAT(ParseError("{{ x is frobbed }}"), HasSubstr("no test named 'frobbed'"));
  // jinja2 defers the error to run time inside {% if %} and conditional expressions.
  EXPECT_EQ(ParseError("{% if a %}{{ x|from_json }}{% endif %}"), "parsed");
  EXPECT_EQ(ParseError("{{ x|from_json if a else 1 }}"), "parsed");
  EXPECT_THAT(ParseError("{% if a %}{% for i in x %}{{ i|from_json }}{% endfor %}{% endif %}"),
              HasSubstr("no filter named"));
}

TEST(JinjaParserTest, LimitsNesting) {
  std::string deep_parens(1000, '(');
  EXPECT_THAT(ParseError("{{ " + deep_parens + "1" + std::string(1000, ')') + " }}"), HasSubstr("nested too deeply"));
  std::string long_chain = "{{ a";
  for (int i = 0; i < 1000; ++i) long_chain += ".b";
  EXPECT_THAT(ParseError(long_chain + " }}"), HasSubstr("nested too deeply"));
  std::string blocks;
  for (int i = 0; i < 1000; ++i) blocks += "{% if x %}";
  EXPECT_THAT(ParseError(blocks), HasSubstr("nested too deeply"));
  std::string nots = "{{ ";
  for (int i = 0; i < 100000; ++i) nots += "not ";
  EXPECT_THAT(ParseError(nots + "x }}"), HasSubstr("nested too deeply"));
}

}  // namespace
}  // namespace triplane::engine::chat::jinja
