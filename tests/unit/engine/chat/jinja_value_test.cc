#include "engine/chat/jinja_value.h"

#include <cmath>
#include <limits>
#include <string>

#include "gtest/gtest.h"

namespace triplane::engine::chat::jinja {
namespace {

TEST(JinjaValueTest, FormatsFloatsLikePythonRepr) {
  EXPECT_EQ(FormatPythonFloat(1.0), "1.0");
  EXPECT_EQ(FormatPythonFloat(0.1), "0.1");
  EXPECT_EQ(FormatPythonFloat(-2.5), "-2.5");
  EXPECT_EQ(FormatPythonFloat(1e16), "1e+16");
  EXPECT_EQ(FormatPythonFloat(1e15), "1000000000000000.0");
  EXPECT_EQ(FormatPythonFloat(0.0001), "0.0001");
  EXPECT_EQ(FormatPythonFloat(0.00001), "1e-05");
  EXPECT_EQ(FormatPythonFloat(1.5e-7), "1.5e-07");
  EXPECT_EQ(FormatPythonFloat(123456.789), "123456.789");
  EXPECT_EQ(FormatPythonFloat(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(FormatPythonFloat(std::nan("")), "nan");
}

TEST(JinjaValueTest, StrAndReprFollowPython) {
  WorkBudget budget;
  EXPECT_EQ(ToStr(Value::None(), budget), "None");
  EXPECT_EQ(ToStr(Value(true), budget), "True");
  EXPECT_EQ(ToStr(Value(), budget), "");
  EXPECT_EQ(Repr(Value("it's"), budget), "\"it's\"");
  EXPECT_EQ(Repr(Value("tab\there\x01"), budget), "'tab\\there\\x01'");
  EXPECT_EQ(Repr(Value("什么\u3000"), budget), "'什么\\u3000'");
  EXPECT_EQ(ToStr(Value::Tuple({Value(int64_t{1})}), budget), "(1,)");
}

TEST(JinjaValueTest, DumpsJsonLikePythonJsonDumps) {
  WorkBudget budget;
  ValueDict dict;
  dict.Set(Value("z"), Value("é\"\x1f"));
  dict.Set(Value("a"), Value::List({Value(1.0), Value::None(), Value(false)}));
  const Value v = Value::Dict(std::move(dict));
  EXPECT_EQ(*DumpJson(v, {}, budget), R"({"z": "é\"\u001f", "a": [1.0, null, false]})");
  EXPECT_EQ(*DumpJson(v, {.ensure_ascii = true, .sort_keys = true}, budget),
            R"({"a": [1.0, null, false], "z": "\u00e9\"\u001f"})");
  EXPECT_EQ(*DumpJson(Value("😀"), {.ensure_ascii = true}, budget), R"("\ud83d\ude00")");
  EXPECT_FALSE(DumpJson(Value(), {}, budget).ok());
}

TEST(JinjaValueTest, EqualityAndOrderingFollowPython) {
  WorkBudget budget;
  EXPECT_TRUE(Equals(Value(int64_t{1}), Value(1.0), budget));
  EXPECT_TRUE(Equals(Value(true), Value(int64_t{1}), budget));
  EXPECT_FALSE(Equals(Value("1"), Value(int64_t{1}), budget));
  EXPECT_TRUE(Equals(Value::List({Value("a")}), Value::List({Value("a")}), budget));
  EXPECT_FALSE(Equals(Value::List({}), Value::Tuple({}), budget));
  EXPECT_EQ(*Compare(Value("a"), Value("b"), budget), -1);
  EXPECT_EQ(*Compare(Value::List({Value(int64_t{1}), Value(int64_t{2})}), Value::List({Value(int64_t{1})}), budget), 1);
  EXPECT_FALSE(Compare(Value("a"), Value(int64_t{1}), budget).ok());
}

TEST(JinjaValueTest, FromJsonKeepsTypesAndRefusesDeepNesting) {
  absl::StatusOr<Value> v = FromJson(nlohmann::json::parse(R"({"a": [1, 2.5, "s", null, true]})"));
  ASSERT_TRUE(v.ok());
  WorkBudget budget;
  EXPECT_EQ(ToStr(*v, budget), "{'a': [1, 2.5, 's', None, True]}");
  nlohmann::json deep = 1;
  for (int i = 0; i < kMaxValueDepth + 5; ++i) deep = nlohmann::json::array({deep});
  EXPECT_FALSE(FromJson(deep).ok());
}

TEST(JinjaValueTest, ExhaustedBudgetStopsDeepOperations) {
  WorkBudget budget(10, 1 << 20);
  ValueList items(100, Value("x"));
  const Value list = Value::List(items);
  ToStr(list, budget);
  EXPECT_TRUE(budget.exhausted());
}

}  // namespace
}  // namespace triplane::engine::chat::jinja
