#include "engine/server/openai_response.h"

#include <cmath>
#include <limits>
#include <memory>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/vocab_loader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/llama_cpp_source.h"

namespace triplane::engine::server {
namespace {

using nlohmann::json;

std::unique_ptr<Tokenizer> LoadSpm() {
  auto file = GgufFile::Open(::triplane::testing::LlamaCppVocabPath("llama-spm").string());
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  auto vocab = LoadVocab(**file);
  EXPECT_TRUE(vocab.ok());
  auto tokenizer = Tokenizer::Create(*std::move(vocab));
  EXPECT_TRUE(tokenizer.ok());
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

ResponseContext Context(Endpoint endpoint, int top_logprobs = -1) {
  return {.endpoint = endpoint,
          .id = "id-1",
          .created = 1700000000,
          .model = "tiny",
          .top_logprobs = top_logprobs};
}

TEST(OpenAiResponseTest, IdsAreUniqueWithTheirPrefix) {
  const std::string a = NewResponseId("cmpl-");
  const std::string b = NewResponseId("cmpl-");
  EXPECT_THAT(a, ::testing::MatchesRegex("cmpl-[0-9a-f]{24}"));
  EXPECT_NE(a, b);
}

TEST(OpenAiResponseTest, UsageCountsTotalsAndCachedTokens) {
  EXPECT_EQ(UsageJson({.prompt_tokens = 10, .completion_tokens = 5, .cached_tokens = 8}),
            json::parse(R"({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                            "prompt_tokens_details": {"cached_tokens": 8}})"));
}

TEST(OpenAiResponseTest, CompletionChunksAndResponse) {
  auto tokenizer = LoadSpm();
  ASSERT_NE(tokenizer, nullptr);
  const ResponseContext context = Context(Endpoint::kCompletions);
  json chunk = StreamChunk(context, 1, "Hi", false, nullptr, ChoiceFinish::kNone, false);
  EXPECT_EQ(chunk, json::parse(R"({"id": "id-1", "object": "text_completion", "created": 1700000000,
      "model": "tiny", "system_fingerprint": null,
      "choices": [{"index": 1, "text": "Hi", "logprobs": null, "finish_reason": null}]})"));
  json last = StreamChunk(context, 0, "", false, nullptr, ChoiceFinish::kLength, true);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(last.contains("usage") && last["usage"].is_null());

  json usage = UsageChunk(context, {.prompt_tokens = 2, .completion_tokens = 3});
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 5);

  std::vector<ChoiceResult> choices = {{.text = "a", .finish = ChoiceFinish::kStop},
                                       {.text = "b", .finish = ChoiceFinish::kLength}};
  json response = CompletionResponse(context, choices, {.prompt_tokens = 1, .completion_tokens = 2},
                                     *tokenizer);
  EXPECT_EQ(response["object"], "text_completion");
  ASSERT_EQ(response["choices"].size(), 2u);
  EXPECT_EQ(
      response["choices"][1],
      json::parse(R"({"index": 1, "text": "b", "logprobs": null, "finish_reason": "length"})"));
  EXPECT_EQ(response["usage"]["total_tokens"], 3);
}

TEST(OpenAiResponseTest, ChatChunksOpenWithTheRoleAndEndWithAnEmptyDelta) {
  auto tokenizer = LoadSpm();
  ASSERT_NE(tokenizer, nullptr);
  const ResponseContext context = Context(Endpoint::kChatCompletions);
  json first = StreamChunk(context, 0, "", true, nullptr, ChoiceFinish::kNone, false);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], json::parse(R"({"role": "assistant", "content": ""})"));
  json middle = StreamChunk(context, 0, "Hello", false, nullptr, ChoiceFinish::kNone, false);
  EXPECT_EQ(middle["choices"][0]["delta"], json::parse(R"({"content": "Hello"})"));
  json end = StreamChunk(context, 0, "", false, nullptr, ChoiceFinish::kStop, false);
  EXPECT_EQ(end["choices"][0]["delta"], json::object());
  EXPECT_EQ(end["choices"][0]["finish_reason"], "stop");

  std::vector<ChoiceResult> choices = {{.text = "Hi there", .finish = ChoiceFinish::kStop}};
  json response = CompletionResponse(context, choices, {}, *tokenizer);
  EXPECT_EQ(response["object"], "chat.completion");
  EXPECT_EQ(response["choices"][0]["message"],
            json::parse(R"({"role": "assistant", "content": "Hi there", "refusal": null})"));
}

TEST(OpenAiResponseTest, LogprobsInBothShapes) {
  auto tokenizer = LoadSpm();
  ASSERT_NE(tokenizer, nullptr);
  const int32_t hello = tokenizer->Encode("Hello", {.add_special = false})[0];
  const int32_t world = tokenizer->Encode("world", {.add_special = false})[0];
  const std::vector<TokenLogprob> entries = {
      {.token = hello, .logprob = -0.5f, .top = {{hello, -0.5f}, {world, -1.5f}}, .text_offset = 0},
      {.token = world,
       .logprob = -std::numeric_limits<float>::infinity(),
       .top = {},
       .text_offset = 6}};

  json completion = LogprobsJson(Context(Endpoint::kCompletions, 1), entries, *tokenizer);
  EXPECT_EQ(completion["tokens"], json::array({" Hello", " world"}));
  EXPECT_EQ(completion["token_logprobs"], json::array({-0.5, -9999.0}));
  EXPECT_EQ(completion["top_logprobs"], json::parse(R"([{" Hello": -0.5}, {}])"));
  EXPECT_EQ(completion["text_offset"], json::array({0, 6}));

  json chat = LogprobsJson(Context(Endpoint::kChatCompletions, 2), entries, *tokenizer);
  ASSERT_EQ(chat["content"].size(), 2u);
  EXPECT_EQ(chat["content"][0]["token"], " Hello");
  EXPECT_EQ(chat["content"][0]["bytes"], json::array({32, 72, 101, 108, 108, 111}));
  ASSERT_EQ(chat["content"][0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(chat["content"][0]["top_logprobs"][1]["token"], " world");
  EXPECT_DOUBLE_EQ(chat["content"][0]["top_logprobs"][1]["logprob"].get<double>(), -1.5);
  EXPECT_TRUE(chat["refusal"].is_null());
}

}  // namespace
}  // namespace triplane::engine::server
