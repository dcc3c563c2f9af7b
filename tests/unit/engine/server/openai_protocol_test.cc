#include "engine/server/openai_protocol.h"

#include <string>

#include "engine/server/api_error.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace triplane::engine::server {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

ProtocolLimits Limits() { return {.vocab_size = 1000}; }

absl::StatusOr<CompletionRequest> ParseCompletion(std::string_view body) {
  absl::StatusOr<json> parsed = ParseRequestBody(body);
  if (!parsed.ok()) return parsed.status();
  return ParseCompletionRequest(*parsed, Endpoint::kCompletions, Limits());
}

absl::StatusOr<CompletionRequest> ParseChat(std::string_view body) {
  absl::StatusOr<json> parsed = ParseRequestBody(body);
  if (!parsed.ok()) return parsed.status();
  return ParseCompletionRequest(*parsed, Endpoint::kChatCompletions, Limits());
}

TEST(OpenAiProtocolTest, CompletionDefaults) {
  auto request = ParseCompletion(R"({"model": "m", "prompt": "Hello"})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->params.model, "m");
  ASSERT_EQ(request->prompts.size(), 1u);
  EXPECT_FALSE(request->prompts[0].is_tokens);
  EXPECT_EQ(request->prompts[0].text, "Hello");
  EXPECT_FALSE(request->params.stream);
  EXPECT_FALSE(request->params.max_tokens.has_value());
  EXPECT_FLOAT_EQ(request->params.sampling.temperature, 1.0f);
  EXPECT_FALSE(request->params.seed_given);
  EXPECT_EQ(request->params.n, 1);
  EXPECT_EQ(request->params.top_logprobs, -1);
  EXPECT_TRUE(request->add_special_tokens);
}

TEST(OpenAiProtocolTest, CompletionWithEveryParameter) {
  auto request = ParseCompletion(R"({
    "prompt": [1, 2, 3], "stream": true, "stream_options": {"include_usage": true},
    "max_tokens": 32, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
    "presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.1,
    "seed": -1, "stop": ["a", "bc"], "n": 3, "logprobs": 5, "logit_bias": {"7": -100, "9": 2.5},
    "ignore_eos": true, "user": "u-1", "stop_token_ids": [4], "echo": false, "best_of": 3, "suffix": null,
    "some_future_field": {"x": 1}})");
  ASSERT_TRUE(request.ok()) << request.status();
  const GenerationParams& p = request->params;
  ASSERT_EQ(request->prompts.size(), 1u);
  EXPECT_TRUE(request->prompts[0].is_tokens);
  EXPECT_EQ(request->prompts[0].tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_TRUE(p.stream);
  EXPECT_TRUE(p.include_usage);
  EXPECT_EQ(p.max_tokens, 32);
  EXPECT_FLOAT_EQ(p.sampling.temperature, 0.7f);
  EXPECT_FLOAT_EQ(p.sampling.top_p, 0.9f);
  EXPECT_EQ(p.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(p.sampling.min_p, 0.05f);
  EXPECT_FLOAT_EQ(p.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(p.sampling.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(p.sampling.repetition_penalty, 1.1f);
  EXPECT_TRUE(p.seed_given);
  EXPECT_EQ(p.sampling.seed, ~uint64_t{0});
  EXPECT_EQ(p.stop, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(p.stop_token_ids, (std::vector<int32_t>{4}));
  EXPECT_EQ(p.n, 3);
  EXPECT_EQ(p.top_logprobs, 5);
  ASSERT_EQ(p.sampling.logit_bias.size(), 2u);
  EXPECT_EQ(p.sampling.logit_bias[0], (std::pair<int32_t, float>{7, -100.0f}));
  EXPECT_EQ(p.sampling.logit_bias[1], (std::pair<int32_t, float>{9, 2.5f}));
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_EQ(p.user, "u-1");
}

TEST(OpenAiProtocolTest, BatchPromptsOfTextAndOfTokens) {
  auto text = ParseCompletion(R"({"prompt": ["a", "b"], "n": 2})");
  ASSERT_TRUE(text.ok()) << text.status();
  ASSERT_EQ(text->prompts.size(), 2u);
  EXPECT_EQ(text->prompts[1].text, "b");
  auto tokens = ParseCompletion(R"({"prompt": [[1], [2, 3]]})");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->prompts.size(), 2u);
  EXPECT_EQ(tokens->prompts[1].tokens, (std::vector<int32_t>{2, 3}));
}

TEST(OpenAiProtocolTest, ChatMessagesAreNormalised) {
  auto request = ParseChat(R"({
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
      {"role": "assistant", "content": null, "name": "bot"}],
    "max_completion_tokens": 8, "max_tokens": 100, "logprobs": true, "top_logprobs": 3,
    "chat_template_kwargs": {"enable_thinking": false}, "tools": [], "tool_choice": "none",
    "response_format": {"type": "text"}})");
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->messages.size(), 3u);
  EXPECT_EQ(request->messages[1]["content"], "Hi\nthere");
  EXPECT_TRUE(request->messages[2]["content"].is_null());
  EXPECT_EQ(request->messages[2]["name"], "bot");
  EXPECT_EQ(request->params.max_tokens, 8);  // max_completion_tokens wins
  EXPECT_EQ(request->params.top_logprobs, 3);
  EXPECT_EQ(request->chat_template_kwargs["enable_thinking"], false);
  EXPECT_FALSE(request->add_special_tokens);
  EXPECT_TRUE(request->add_generation_prompt);

  auto plain_logprobs =
      ParseChat(R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true})");
  ASSERT_TRUE(plain_logprobs.ok());
  EXPECT_EQ(plain_logprobs->params.top_logprobs, 0);
}

TEST(OpenAiProtocolTest, NullMeansNotGiven) {
  auto request = ParseCompletion(
      R"({"prompt": "x", "temperature": null, "max_tokens": null, "stop": null, "n": null, "seed": null})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_FLOAT_EQ(request->params.sampling.temperature, 1.0f);
  EXPECT_FALSE(request->params.max_tokens.has_value());
  EXPECT_FALSE(request->params.seed_given);
}

struct BadCase {
  Endpoint endpoint;
  std::string body;
  std::string param;
  std::string code;
};

class BadRequestTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadRequestTest, IsA400NamingTheParameter) {
  const BadCase& c = GetParam();
  absl::StatusOr<json> body = ParseRequestBody(c.body);
  absl::Status status = body.status();
  if (body.ok()) status = ParseCompletionRequest(*body, c.endpoint, Limits()).status();
  ASSERT_FALSE(status.ok()) << c.body;
  EXPECT_EQ(ErrorHttpStatus(status), 400) << c.body;
  EXPECT_EQ(ErrorParam(status), c.param) << c.body << ": " << status;
  EXPECT_EQ(ErrorCode(status), c.code) << c.body << ": " << status;
  EXPECT_FALSE(status.message().empty());
}

constexpr Endpoint kCmpl = Endpoint::kCompletions;
constexpr Endpoint kChat = Endpoint::kChatCompletions;

INSTANTIATE_TEST_SUITE_P(
    Table, BadRequestTest,
    ::testing::Values(
        BadCase{kCmpl, "", "", "invalid_json"}, BadCase{kCmpl, "{\"prompt\": ", "", "invalid_json"},
        BadCase{kCmpl, "[1, 2]", "", "invalid_type"},
        BadCase{kCmpl, std::string(100, '[') + std::string(100, ']'), "", "invalid_json"},
        BadCase{kCmpl, R"({})", "prompt", "missing_required_parameter"},
        BadCase{kCmpl, R"({"prompt": null})", "prompt", "missing_required_parameter"},
        BadCase{kCmpl, R"({"prompt": 5})", "prompt", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": []})", "prompt", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": [1, "a"]})", "prompt[1]", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": ["a", 1]})", "prompt[1]", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": [[1], []]})", "prompt[1]", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": [1, 1000]})", "prompt[1]", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": [-1]})", "prompt[0]", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": [1.5]})", "prompt[0]", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "model": 3})", "model", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "stream": "yes"})", "stream", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "stream_options": {"include_usage": true}})",
                "stream_options", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "stream": true, "stream_options": {"include_usage": 1}})",
                "stream_options.include_usage", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "max_tokens": 0})", "max_tokens", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "max_tokens": -5})", "max_tokens", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "max_tokens": 1.5})", "max_tokens", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "max_tokens": "10"})", "max_tokens", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "max_tokens": 18446744073709551615})", "max_tokens",
                "invalid_value"},
        BadCase{kChat,
                R"({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 0})",
                "max_completion_tokens", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "temperature": -0.1})", "temperature", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "temperature": 2.5})", "temperature", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "temperature": "hot"})", "temperature", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "top_p": 0})", "top_p", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "top_p": 1.01})", "top_p", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "top_k": -2})", "top_k", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "top_k": 0.5})", "top_k", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "min_p": 1.5})", "min_p", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "presence_penalty": 3})", "presence_penalty",
                "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "frequency_penalty": -2.01})", "frequency_penalty",
                "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "repetition_penalty": 0})", "repetition_penalty",
                "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "seed": "42"})", "seed", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "seed": 1.5})", "seed", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "stop": 7})", "stop", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "stop": ""})", "stop", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "stop": ["a", ""]})", "stop[1]", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "stop": ["a", 2]})", "stop[1]", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]})", "stop",
                "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "n": 0})", "n", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "n": 17})", "n", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": ["a","b","c","d","e"], "n": 16})", "n", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "logprobs": 21})", "logprobs", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "logprobs": true})", "logprobs", "invalid_type"},
        BadCase{kChat, R"({"messages": [{"role": "user", "content": "x"}], "logprobs": 2})",
                "logprobs", "invalid_type"},
        BadCase{kChat, R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})",
                "top_logprobs", "invalid_value"},
        BadCase{
            kChat,
            R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 21})",
            "top_logprobs", "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "logit_bias": [1]})", "logit_bias", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "logit_bias": {"abc": 1}})", "logit_bias",
                "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "logit_bias": {"1000": 1}})", "logit_bias",
                "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "logit_bias": {"-1": 1}})", "logit_bias",
                "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "logit_bias": {"5": 101}})", "logit_bias[5]",
                "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "logit_bias": {"5": "up"}})", "logit_bias[5]",
                "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "ignore_eos": 1})", "ignore_eos", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "stop_token_ids": [5000]})", "stop_token_ids[0]",
                "invalid_value"},
        BadCase{kCmpl, R"({"prompt": "x", "user": 5})", "user", "invalid_type"},
        BadCase{kCmpl, R"({"prompt": "x", "echo": true})", "echo", "unsupported_parameter"},
        BadCase{kCmpl, R"({"prompt": "x", "suffix": "end"})", "suffix", "unsupported_parameter"},
        BadCase{kCmpl, R"({"prompt": "x", "best_of": 3})", "best_of", "unsupported_parameter"},
        BadCase{
            kChat,
            R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})",
            "tools", "unsupported_parameter"},
        BadCase{kChat,
                R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"})",
                "tool_choice", "unsupported_parameter"},
        BadCase{
            kChat,
            R"({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}})",
            "response_format", "unsupported_parameter"},
        BadCase{kChat, R"({})", "messages", "missing_required_parameter"},
        BadCase{kChat, R"({"messages": "hi"})", "messages", "invalid_type"},
        BadCase{kChat, R"({"messages": []})", "messages", "invalid_value"},
        BadCase{kChat, R"({"messages": ["hi"]})", "messages[0]", "invalid_type"},
        BadCase{kChat, R"({"messages": [{"content": "x"}]})", "messages[0].role",
                "missing_required_parameter"},
        BadCase{kChat, R"({"messages": [{"role": 1, "content": "x"}]})", "messages[0].role",
                "invalid_type"},
        BadCase{kChat, R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content",
                "invalid_type"},
        BadCase{
            kChat,
            R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})",
            "messages[0].content[0].type", "unsupported_parameter"},
        BadCase{kChat, R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})",
                "messages[0].content[0].text", "missing_required_parameter"},
        BadCase{kChat,
                R"({"messages": [{"role": "user", "content": "x"}], "chat_template_kwargs": 1})",
                "chat_template_kwargs", "invalid_type"},
        BadCase{
            kChat,
            R"({"messages": [{"role": "user", "content": "x"}], "add_generation_prompt": "no"})",
            "add_generation_prompt", "invalid_type"}));

TEST(OpenAiProtocolTest, ErrorMessagesReadLikeOpenAis) {
  auto request = ParseCompletion(R"({"prompt": "x", "temperature": "hot"})");
  EXPECT_EQ(request.status().message(),
            "Invalid type for 'temperature': expected a number, but got a string instead.");
  auto missing = ParseChat("{}");
  EXPECT_EQ(missing.status().message(), "Missing required parameter: 'messages'.");
}

TEST(OpenAiProtocolTest, EmbeddingInputs) {
  auto parse = [](std::string_view body) {
    return ParseEmbeddingRequest(*ParseRequestBody(body), Limits());
  };
  auto one = parse(R"({"input": "hello", "model": "m"})");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->inputs.size(), 1u);
  EXPECT_FALSE(one->base64);
  auto many = parse(R"({"input": ["a", "b", "c"], "encoding_format": "base64", "dimensions": 64})");
  ASSERT_TRUE(many.ok()) << many.status();
  EXPECT_EQ(many->inputs.size(), 3u);
  EXPECT_TRUE(many->base64);
  EXPECT_EQ(many->dimensions, 64);
  auto tokens = parse(R"({"input": [[1, 2], [3]]})");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_TRUE(tokens->inputs[1].is_tokens);

  EXPECT_EQ(ErrorParam(parse(R"({})").status()), "input");
  EXPECT_EQ(ErrorParam(parse(R"({"input": ""})").status()), "input");
  EXPECT_EQ(ErrorParam(parse(R"({"input": ["a", ""]})").status()), "input[1]");
  EXPECT_EQ(ErrorParam(parse(R"({"input": "a", "encoding_format": "hex"})").status()),
            "encoding_format");
  EXPECT_EQ(ErrorParam(parse(R"({"input": "a", "dimensions": 0})").status()), "dimensions");
  EXPECT_EQ(ErrorParam(parse(R"({"input": [[1, 99999]]})").status()), "input[0][1]");
  std::string big = R"({"input": [)";
  for (int i = 0; i < 65; ++i) big += (i ? ",\"x\"" : "\"x\"");
  EXPECT_EQ(ErrorParam(parse(big + "]}").status()), "input");
}

TEST(OpenAiProtocolTest, TokenizeAndDetokenizeBodies) {
  auto prompt =
      ParseTokenizeRequest(*ParseRequestBody(R"({"prompt": "Hi", "add_special_tokens": false})"));
  ASSERT_TRUE(prompt.ok());
  EXPECT_FALSE(prompt->has_messages);
  EXPECT_FALSE(prompt->add_special_tokens);
  auto chat = ParseTokenizeRequest(
      *ParseRequestBody(R"({"messages": [{"role": "user", "content": "Hi"}]})"));
  ASSERT_TRUE(chat.ok());
  EXPECT_TRUE(chat->has_messages);
  EXPECT_FALSE(chat->add_special_tokens);
  EXPECT_EQ(ErrorParam(ParseTokenizeRequest(*ParseRequestBody("{}")).status()), "prompt");
  EXPECT_EQ(ErrorParam(ParseTokenizeRequest(*ParseRequestBody(R"({"prompt": 1})")).status()),
            "prompt");
  EXPECT_FALSE(ParseTokenizeRequest(*ParseRequestBody(R"({"prompt": "a", "messages": []})")).ok());

  auto detok = ParseDetokenizeRequest(*ParseRequestBody(R"({"tokens": [1, 2]})"), Limits());
  ASSERT_TRUE(detok.ok());
  EXPECT_EQ(detok->tokens, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(ErrorParam(ParseDetokenizeRequest(*ParseRequestBody("{}"), Limits()).status()),
            "tokens");
  EXPECT_EQ(
      ErrorParam(
          ParseDetokenizeRequest(*ParseRequestBody(R"({"tokens": [1000]})"), Limits()).status()),
      "tokens[0]");
  EXPECT_EQ(ErrorParam(
                ParseDetokenizeRequest(*ParseRequestBody(R"({"tokens": "1"})"), Limits()).status()),
            "tokens");
}

TEST(ApiErrorTest, ResponsesCarryStatusTypeParamAndCode) {
  common::HttpResponse bad = ErrorResponse(InvalidParam("temperature", "invalid_value", "too hot"));
  EXPECT_EQ(bad.status, 400);
  json body = json::parse(bad.body);
  EXPECT_EQ(body["error"]["message"], "too hot");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "temperature");
  EXPECT_EQ(body["error"]["code"], "invalid_value");

  common::HttpResponse full = ErrorResponse(ApiError(503, "queue_full", "busy"));
  EXPECT_EQ(full.status, 503);
  EXPECT_EQ(full.headers.Get("Retry-After").value_or(""), "1");
  EXPECT_EQ(json::parse(full.body)["error"]["type"], "service_unavailable_error");
  EXPECT_TRUE(json::parse(full.body)["error"]["param"].is_null());

  common::HttpResponse missing =
      ErrorResponse(ApiError(404, "model_not_found", "no such model", "model"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json::parse(missing.body)["error"]["code"], "model_not_found");

  // Internals stay in the log.
  common::HttpResponse internal = ErrorResponse(absl::InternalError("pointer 0xdead"));
  EXPECT_EQ(internal.status, 500);
  EXPECT_THAT(internal.body, ::testing::Not(HasSubstr("0xdead")));
}

}  // namespace
}  // namespace triplane::engine::server
