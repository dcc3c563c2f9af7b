// The gateway's token bound for limits: what it counts, and any JSON object accepted.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "gateway/token_bound.h"

namespace triplane::gateway {
namespace {

nlohmann::json Body(const char* text) { return nlohmann::json::parse(text); }

TEST(TokenUpperBoundTest, CountsTextMessagesAndMaxTokensTimesN) {
  nlohmann::json chat = Body(R"({"messages":[{"role":"user","content":"hello"}],"max_tokens":10,"n":2})");
  // "user" and "hello": 9 bytes, 16 per message plus 16, then 10 × 2.
  EXPECT_EQ(TokenUpperBound(chat, true, 4096), 9 + 32 + 20);
  nlohmann::json prompt = Body(R"({"prompt":["ab",[1,2]],"max_completion_tokens":5,"max_tokens":99})");
  EXPECT_EQ(TokenUpperBound(prompt, false, 4096), 4 + 8 + 5);
}

TEST(TokenUpperBoundTest, PutsTheDefaultMaxTokensInTheBody) {
  nlohmann::json body = Body(R"({"prompt":"x","max_tokens":null})");
  EXPECT_EQ(TokenUpperBound(body, false, 100), 1 + 8 + 100);
  EXPECT_EQ(body["max_tokens"], 100);
}

// Members of the wrong type used to throw (nlohmann's value()), failing the request with a
// 500 instead of forwarding it for the engine's 400.
TEST(TokenUpperBoundTest, IgnoresMembersOfTheWrongType) {
  nlohmann::json body = Body(R"({"prompt":"x","n":null,"max_tokens":"3"})");
  EXPECT_EQ(TokenUpperBound(body, false, 0), 1 + 8);
  nlohmann::json floats = Body(R"({"prompt":"x","n":1e300,"max_tokens":2})");
  EXPECT_EQ(TokenUpperBound(floats, false, 0), 1 + 8 + 2);
  nlohmann::json not_object = Body("[1,2]");
  EXPECT_EQ(TokenUpperBound(not_object, true, 0), 0);
}

TEST(TokenUpperBoundTest, SaturatesInsteadOfOverflowing) {
  nlohmann::json body =
      Body(R"({"prompt":"x","max_tokens":9223372036854775807,"n":18446744073709551615})");
  EXPECT_EQ(TokenUpperBound(body, false, 0), std::numeric_limits<int64_t>::max());
}

}  // namespace
}  // namespace triplane::gateway
