// `triplane engine` as a client sees it: a real process on a free port serving a tiny
// random-weight llama model (llama.cpp's SentencePiece vocabulary), probed over HTTP.

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/http_client.h"
#include "common/json.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "engine/model/kv_cache.h"
#include "engine/model/model.h"
#include "testing/engine_process.h"
#include "testing/llama_cpp_source.h"

namespace triplane {
namespace {

using namespace std::chrono_literals;
using common::HttpClient;
using common::HttpMethod;
using nlohmann::json;
using testing::EngineProcess;
using ::testing::HasSubstr;

constexpr int kCtx = 256;

struct Reply {
  int status = 0;
  json body;
  std::string raw;
};

// One SSE stream: every data payload, parsed (except "[DONE]").
struct Stream {
  int status = 0;
  std::vector<json> chunks;
  bool done = false;  // saw data: [DONE] as the last event
  std::string error;
};

class EngineServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     ("triplane-engine-server-" + std::to_string(::getpid())));
    std::filesystem::remove_all(*dir_);
    std::filesystem::create_directories(*dir_);
    model_ = new std::filesystem::path(*dir_ / "tiny.gguf");
    testing::WriteTinyModel(testing::LlamaCppVocabPath("llama-spm"), *model_);
    engine_ = EngineProcess::Start(*dir_, *model_,
                                   {"--ctx", std::to_string(kCtx), "--served-model-name", "tiny"})
                  .release();
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
    std::filesystem::remove_all(*dir_);
    delete model_;
    delete dir_;
  }
  void SetUp() override { ASSERT_NE(engine_, nullptr); }

  static Reply Call(const std::string& base, HttpMethod method, const std::string& path,
                    const json& body = nullptr) {
    HttpClient client;
    common::HttpClientRequest request{.method = method, .url = base + path};
    if (!body.is_null()) {
      request.body = body.dump();
      request.headers.Set("Content-Type", "application/json");
    }
    auto response = client.Send(std::move(request));
    Reply reply;
    if (!response.ok()) {
      ADD_FAILURE() << response.status();
      return reply;
    }
    reply.status = response->status;
    reply.raw = response->body;
    auto parsed = common::ParseJson(response->body);
    if (parsed.ok()) reply.body = *parsed;
    return reply;
  }
  static Reply Post(const std::string& path, const json& body) {
    return Call(engine_->url(), HttpMethod::kPost, path, body);
  }
  static Reply Get(const std::string& path) { return Call(engine_->url(), HttpMethod::kGet, path); }

  static Stream PostStream(const std::string& base, const std::string& path, const json& body) {
    HttpClient client;
    Stream stream;
    common::HttpClientRequest request{
        .method = HttpMethod::kPost, .url = base + path, .body = body.dump()};
    absl::Status status = client.ReadSse(std::move(request), [&](const common::SseEvent& event) {
      EXPECT_FALSE(stream.done) << "an event after [DONE]";
      if (event.data == "[DONE]") {
        stream.done = true;
        return true;
      }
      auto chunk = common::ParseJson(event.data);
      EXPECT_TRUE(chunk.ok()) << event.data;
      if (chunk.ok()) stream.chunks.push_back(*chunk);
      return true;
    });
    if (!status.ok()) stream.error = std::string(status.message());
    stream.status = status.ok() ? 200 : 0;
    return stream;
  }

  // Text of choice `index` in a completion / chat stream.
  static std::string StreamText(const Stream& stream, int index = 0) {
    std::string text;
    for (const json& chunk : stream.chunks) {
      for (const json& choice : chunk["choices"]) {
        if (choice["index"] != index) continue;
        if (choice.contains("text")) text += choice["text"].get<std::string>();
        if (choice.contains("delta") && choice["delta"].contains("content") &&
            choice["delta"]["content"].is_string()) {
          text += choice["delta"]["content"].get<std::string>();
        }
      }
    }
    return text;
  }

  static double Metric(const std::string& base, const std::string& name) {
    Reply metrics = Call(base, HttpMethod::kGet, "/metrics");
    std::regex line("(^|\n)" + std::regex_replace(name, std::regex(R"([{}"\\])"), R"(\$&)") +
                    R"( ([0-9.eE+-]+))");
    std::smatch m;
    if (!std::regex_search(metrics.raw, m, line)) return -1;
    return std::stod(m[2]);
  }

  static json Greedy(const std::string& prompt, int max_tokens) {
    return {
        {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", true}};
  }

  static std::filesystem::path* dir_;
  static std::filesystem::path* model_;
  static EngineProcess* engine_;
};

std::filesystem::path* EngineServerTest::dir_ = nullptr;
std::filesystem::path* EngineServerTest::model_ = nullptr;
EngineProcess* EngineServerTest::engine_ = nullptr;

TEST_F(EngineServerTest, HealthAndModels) {
  Reply health = Get("/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body["status"], "ready");
  Reply models = Get("/v1/models");
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(models.body["object"], "list");
  ASSERT_EQ(models.body["data"].size(), 1u);
  EXPECT_EQ(models.body["data"][0]["id"], "tiny");
  EXPECT_EQ(models.body["data"][0]["object"], "model");
  EXPECT_EQ(models.body["data"][0]["max_model_len"], kCtx);
  EXPECT_EQ(Get("/v1/models/tiny").status, 200);
  Reply other = Get("/v1/models/other");
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(other.body["error"]["code"], "model_not_found");
}

TEST_F(EngineServerTest, CompletionNonStreamedHasOpenAisShape) {
  Reply reply = Post("/v1/completions", {{"model", "tiny"},
                                         {"prompt", "Hello world"},
                                         {"max_tokens", 8},
                                         {"temperature", 0},
                                         {"ignore_eos", true},
                                         {"user", "u1"}});
  ASSERT_EQ(reply.status, 200) << reply.raw;
  const json& body = reply.body;
  EXPECT_THAT(body["id"].get<std::string>(), ::testing::StartsWith("cmpl-"));
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["model"], "tiny");
  EXPECT_TRUE(body["created"].is_number_integer());
  ASSERT_EQ(body["choices"].size(), 1u);
  EXPECT_EQ(body["choices"][0]["index"], 0);
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(body["choices"][0]["logprobs"].is_null());
  EXPECT_FALSE(body["choices"][0]["text"].get<std::string>().empty());
  Reply tokens = Post("/tokenize", {{"prompt", "Hello world"}});
  EXPECT_EQ(body["usage"]["prompt_tokens"], tokens.body["count"]);
  EXPECT_EQ(body["usage"]["completion_tokens"], 8);
  EXPECT_EQ(body["usage"]["total_tokens"], tokens.body["count"].get<int>() + 8);
  EXPECT_TRUE(body["usage"]["prompt_tokens_details"]["cached_tokens"].is_number_integer());
}

TEST_F(EngineServerTest, CompletionStreamIsTheSameTextWithDoneAndUsage) {
  json request = Greedy("Once upon a time", 12);
  Reply whole = Post("/v1/completions", request);
  ASSERT_EQ(whole.status, 200) << whole.raw;
  request["stream"] = true;
  request["stream_options"] = {{"include_usage", true}};
  Stream stream = PostStream(engine_->url(), "/v1/completions", request);
  ASSERT_EQ(stream.error, "");
  EXPECT_TRUE(stream.done);
  ASSERT_GE(stream.chunks.size(), 2u);
  EXPECT_EQ(StreamText(stream), whole.body["choices"][0]["text"]);
  const std::string id = stream.chunks[0]["id"];
  for (size_t i = 0; i + 1 < stream.chunks.size(); ++i) {
    EXPECT_EQ(stream.chunks[i]["id"], id);
    EXPECT_EQ(stream.chunks[i]["object"], "text_completion");
    EXPECT_TRUE(stream.chunks[i].contains("usage") && stream.chunks[i]["usage"].is_null());
  }
  const json& penultimate = stream.chunks[stream.chunks.size() - 2];
  EXPECT_EQ(penultimate["choices"][0]["finish_reason"], "length");
  const json& last = stream.chunks.back();
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"]["completion_tokens"], 12);
  EXPECT_EQ(last["usage"], whole.body["usage"]);

  // Without include_usage: no usage anywhere.
  request.erase("stream_options");
  Stream plain = PostStream(engine_->url(), "/v1/completions", request);
  EXPECT_TRUE(plain.done);
  for (const json& chunk : plain.chunks) EXPECT_FALSE(chunk.contains("usage"));
}

TEST_F(EngineServerTest, ChatCompletionsStreamedAndNot) {
  json request = {
      {"model", "tiny"},
      {"messages",
       {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi!"}}}},
      {"max_completion_tokens", 6},
      {"temperature", 0},
      {"ignore_eos", true}};
  Reply whole = Post("/v1/chat/completions", request);
  ASSERT_EQ(whole.status, 200) << whole.raw;
  EXPECT_THAT(whole.body["id"].get<std::string>(), ::testing::StartsWith("chatcmpl-"));
  EXPECT_EQ(whole.body["object"], "chat.completion");
  EXPECT_EQ(whole.body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(whole.body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(whole.body["usage"]["completion_tokens"], 6);
  Reply rendered = Post("/tokenize", {{"messages", request["messages"]}});
  ASSERT_EQ(rendered.status, 200) << rendered.raw;
  EXPECT_EQ(whole.body["usage"]["prompt_tokens"], rendered.body["count"]);

  request["stream"] = true;
  Stream stream = PostStream(engine_->url(), "/v1/chat/completions", request);
  EXPECT_TRUE(stream.done);
  ASSERT_GE(stream.chunks.size(), 2u);
  EXPECT_EQ(stream.chunks[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(stream.chunks[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(stream.chunks.back()["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(StreamText(stream), whole.body["choices"][0]["message"]["content"]);
}

TEST_F(EngineServerTest, StopStringsAreNeverEmittedEvenAcrossTokens) {
  json request = Greedy("The meaning of life is", 24);
  request["logprobs"] = 0;
  Reply whole = Post("/v1/completions", request);
  ASSERT_EQ(whole.status, 200) << whole.raw;
  const std::string text = whole.body["choices"][0]["text"];
  const json& offsets = whole.body["choices"][0]["logprobs"]["text_offset"];
  // A stop string made of the last two bytes of one token and the first two of the next.
  std::string stop;
  for (size_t i = 1; i + 1 < offsets.size() && stop.empty(); ++i) {
    const size_t start = offsets[i], prev = offsets[i - 1], next = offsets[i + 1];
    if (start - prev >= 3 && next - start >= 3) {
      const std::string candidate = text.substr(start - 2, 4);
      if ((static_cast<unsigned char>(candidate[0]) & 0xC0) != 0x80 &&
          (static_cast<unsigned char>(candidate[3]) & 0x80) == 0) {
        stop = candidate;
      }
    }
  }
  ASSERT_FALSE(stop.empty()) << text;
  const std::string expected = text.substr(0, text.find(stop));
  request.erase("logprobs");
  request["stop"] = json::array({"never-there", stop});
  Reply stopped = Post("/v1/completions", request);
  ASSERT_EQ(stopped.status, 200) << stopped.raw;
  EXPECT_EQ(stopped.body["choices"][0]["text"], expected);
  EXPECT_EQ(stopped.body["choices"][0]["finish_reason"], "stop");
  EXPECT_LT(stopped.body["usage"]["completion_tokens"].get<int>(), 24);

  request["stream"] = true;
  Stream stream = PostStream(engine_->url(), "/v1/completions", request);
  EXPECT_TRUE(stream.done);
  EXPECT_EQ(StreamText(stream), expected);
  EXPECT_EQ(stream.chunks.back()["choices"][0]["finish_reason"], "stop");
  // The engine request was cancelled: nothing keeps running.
  for (int i = 0; i < 200 && Metric(engine_->url(), "triplane_num_requests_running") != 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(Metric(engine_->url(), "triplane_num_requests_running"), 0);
}

TEST_F(EngineServerTest, NChoicesLogprobsAndUsage) {
  Reply reply = Post("/v1/completions", {{"prompt", "Hi"},
                                         {"max_tokens", 5},
                                         {"n", 2},
                                         {"seed", 7},
                                         {"temperature", 1.0},
                                         {"ignore_eos", true},
                                         {"logprobs", 3}});
  ASSERT_EQ(reply.status, 200) << reply.raw;
  ASSERT_EQ(reply.body["choices"].size(), 2u);
  int completion = 0;
  for (int i = 0; i < 2; ++i) {
    const json& choice = reply.body["choices"][i];
    EXPECT_EQ(choice["index"], i);
    const json& logprobs = choice["logprobs"];
    ASSERT_EQ(logprobs["tokens"].size(), 5u);
    ASSERT_EQ(logprobs["token_logprobs"].size(), 5u);
    ASSERT_EQ(logprobs["top_logprobs"].size(), 5u);
    ASSERT_EQ(logprobs["text_offset"].size(), 5u);
    for (const json& top : logprobs["top_logprobs"]) {
      EXPECT_LE(top.size(), 3u);
      EXPECT_GE(top.size(), 1u);
      for (const auto& [token, lp] : top.items()) EXPECT_LE(lp.get<double>(), 0.0);
    }
    std::string joined;
    for (const json& t : logprobs["tokens"]) joined += t.get<std::string>();
    EXPECT_EQ(joined, choice["text"]);
    completion += 5;
  }
  EXPECT_EQ(reply.body["usage"]["completion_tokens"], completion);

  Reply chat = Post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                                             {"max_tokens", 4},
                                             {"temperature", 0},
                                             {"ignore_eos", true},
                                             {"logprobs", true},
                                             {"top_logprobs", 2}});
  ASSERT_EQ(chat.status, 200) << chat.raw;
  const json& content = chat.body["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 4u);
  for (const json& entry : content) {
    EXPECT_TRUE(entry["token"].is_string());
    EXPECT_LE(entry["logprob"].get<double>(), 0.0);
    EXPECT_TRUE(entry["bytes"].is_array());
    ASSERT_EQ(entry["top_logprobs"].size(), 2u);
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(entry["top_logprobs"][0]["token"], entry["token"]);
    EXPECT_GE(entry["top_logprobs"][0]["logprob"].get<double>(),
              entry["top_logprobs"][1]["logprob"].get<double>());
  }
}

TEST_F(EngineServerTest, SeedMakesSamplingReproducible) {
  json request = {{"prompt", "Tell me"},
                  {"max_tokens", 16},
                  {"temperature", 1.2},
                  {"seed", 42},
                  {"ignore_eos", true}};
  Reply first = Post("/v1/completions", request);
  Reply second = Post("/v1/completions", request);
  ASSERT_EQ(first.status, 200) << first.raw;
  EXPECT_EQ(first.body["choices"][0]["text"], second.body["choices"][0]["text"]);
  request["seed"] = 43;
  Reply other = Post("/v1/completions", request);
  EXPECT_NE(first.body["choices"][0]["text"], other.body["choices"][0]["text"]);
}

TEST_F(EngineServerTest, EightConcurrentGreedyRequestsEachYieldWhatTheyYieldAlone) {
  std::vector<std::string> alone(8);
  for (int i = 0; i < 8; ++i) {
    Reply reply = Post("/v1/completions", Greedy("Request number " + std::to_string(i * 37), 16));
    ASSERT_EQ(reply.status, 200) << reply.raw;
    alone[i] = reply.body["choices"][0]["text"];
  }
  std::vector<std::string> together(8);
  std::vector<int> statuses(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      json request = Greedy("Request number " + std::to_string(i * 37), 16);
      if (i % 2 == 1) {
        request["stream"] = true;
        Stream stream = PostStream(engine_->url(), "/v1/completions", request);
        statuses[i] = stream.done ? 200 : 0;
        together[i] = StreamText(stream);
      } else {
        Reply reply = Post("/v1/completions", request);
        statuses[i] = reply.status;
        together[i] = reply.body["choices"][0]["text"];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(statuses[i], 200) << i;
    EXPECT_EQ(together[i], alone[i]) << i;
  }
}

TEST_F(EngineServerTest, RepeatedPromptIsServedFromThePrefixCache) {
  std::string prompt;
  for (int i = 0; i < 12; ++i)
    prompt += "The same long system prompt sentence number " + std::to_string(i) + ". ";
  Reply first = Post("/v1/completions", Greedy(prompt, 2));
  ASSERT_EQ(first.status, 200) << first.raw;
  Reply second = Post("/v1/completions", Greedy(prompt, 2));
  ASSERT_EQ(second.status, 200) << second.raw;
  EXPECT_GT(second.body["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 0)
      << second.raw;
  EXPECT_GT(Metric(engine_->url(), "triplane_prefix_cache_hits_total"), 0);
}

TEST_F(EngineServerTest, ClientDisconnectMidStreamFreesTheRequest) {
  const double aborted_before = std::max(
      0.0, Metric(engine_->url(), "triplane_request_success_total{finished_reason=\"abort\"}"));
  HttpClient client;
  std::atomic<int> events{0};
  std::atomic<bool> ended{false};
  std::shared_ptr<common::HttpStreamHandle> handle;
  handle = client.Stream({.method = HttpMethod::kPost,
                          .url = engine_->url() + "/v1/completions",
                          .body = json{{"prompt", "Go on forever"},
                                       {"max_tokens", kCtx - 16},
                                       {"ignore_eos", true},
                                       {"stream", true}}
                                      .dump()},
                         {.on_head = [](int, const common::HttpHeaders&) {},
                          .on_data = [&](std::string_view) { return ++events < 3; },
                          .on_done = [&](absl::Status) { ended = true; }});
  for (int i = 0; i < 500 && !ended; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(ended);
  EXPECT_GE(events.load(), 3);
  handle->Cancel();
  bool freed = false;
  for (int i = 0; i < 500 && !freed; ++i) {
    freed = Metric(engine_->url(), "triplane_num_requests_running") == 0 &&
            Metric(engine_->url(), "triplane_kv_cache_usage_perc") == 0;
    if (!freed) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(freed);
  EXPECT_EQ(Metric(engine_->url(), "triplane_request_success_total{finished_reason=\"abort\"}"),
            aborted_before + 1);
}

TEST_F(EngineServerTest, BadInputIsA400WithAnOpenAiErrorBody) {
  auto expect_error = [](const Reply& reply, int status, const std::string& param,
                         const std::string& code) {
    EXPECT_EQ(reply.status, status) << reply.raw;
    EXPECT_TRUE(reply.body["error"]["message"].is_string()) << reply.raw;
    EXPECT_EQ(reply.body["error"]["type"],
              status == 404 ? "not_found_error" : "invalid_request_error")
        << reply.raw;
    if (!param.empty()) {
      EXPECT_EQ(reply.body["error"]["param"], param) << reply.raw;
    }
    if (!code.empty()) {
      EXPECT_EQ(reply.body["error"]["code"], code) << reply.raw;
    }
  };
  HttpClient client;
  auto malformed = client.Send(
      {.method = HttpMethod::kPost, .url = engine_->url() + "/v1/completions", .body = "{nope"});
  ASSERT_TRUE(malformed.ok());
  EXPECT_EQ(malformed->status, 400);
  EXPECT_THAT(malformed->body, HasSubstr("invalid_json"));

  expect_error(Post("/v1/completions", {{"prompt", 5}}), 400, "prompt", "invalid_type");
  expect_error(Post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 0}}), 400, "max_tokens",
               "invalid_value");
  expect_error(Post("/v1/completions", {{"prompt", "x"}, {"n", 1000}}), 400, "n", "invalid_value");
  expect_error(Post("/v1/completions", {{"prompt", "x"}, {"temperature", "warm"}}), 400,
               "temperature", "invalid_type");
  expect_error(Post("/v1/completions", {{"prompt", "x"}, {"model", "gpt-4"}}), 404, "model",
               "model_not_found");
  expect_error(Post("/v1/completions", {{"prompt", "x"}, {"max_tokens", kCtx}}), 400, "max_tokens",
               "context_length_exceeded");
  std::string long_prompt;
  for (int i = 0; i < kCtx; ++i) long_prompt += " word";
  expect_error(Post("/v1/completions", {{"prompt", long_prompt}}), 400, "prompt",
               "context_length_exceeded");
  expect_error(
      Post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", long_prompt}}}}}),
      400, "messages", "context_length_exceeded");
  expect_error(Post("/v1/chat/completions", {{"messages", json::array()}}), 400, "messages",
               "invalid_value");
  expect_error(Post("/v1/completions", {{"prompt", {1, 999999}}}), 400, "prompt[1]",
               "invalid_value");
  expect_error(Post("/v1/embeddings", {{"input", json::array()}}), 400, "input", "invalid_value");
  expect_error(Post("/detokenize", {{"tokens", {-1}}}), 400, "tokens[0]", "invalid_value");
  expect_error(Post("/tokenize", {{"text", "x"}}), 400, "prompt", "");
  EXPECT_EQ(Call(engine_->url(), HttpMethod::kGet, "/v1/completions").status, 405);
  // The server is still fine.
  EXPECT_EQ(Get("/health").status, 200);
}

TEST_F(EngineServerTest, TokenizeDetokenizeRoundTrip) {
  Reply tokens =
      Post("/tokenize", {{"prompt", "Hello world, 你好!"}, {"add_special_tokens", false}});
  ASSERT_EQ(tokens.status, 200) << tokens.raw;
  EXPECT_EQ(tokens.body["count"], tokens.body["tokens"].size());
  EXPECT_EQ(tokens.body["max_model_len"], kCtx);
  Reply text = Post("/detokenize", {{"tokens", tokens.body["tokens"]}});
  ASSERT_EQ(text.status, 200) << text.raw;
  EXPECT_EQ(text.body["prompt"], "Hello world, 你好!");
  Reply with_bos = Post("/tokenize", {{"prompt", "Hello"}});
  EXPECT_EQ(with_bos.body["count"], with_bos.body["tokens"].size());
  EXPECT_EQ(with_bos.body["tokens"][0], 1);  // SentencePiece BOS
}

TEST_F(EngineServerTest, EmbeddingsAreNormalisedVectors) {
  Reply reply =
      Post("/v1/embeddings", {{"model", "tiny"}, {"input", {"first text", "second text"}}});
  ASSERT_EQ(reply.status, 200) << reply.raw;
  EXPECT_EQ(reply.body["object"], "list");
  EXPECT_EQ(reply.body["model"], "tiny");
  ASSERT_EQ(reply.body["data"].size(), 2u);
  std::vector<float> first;
  for (int i = 0; i < 2; ++i) {
    const json& item = reply.body["data"][i];
    EXPECT_EQ(item["object"], "embedding");
    EXPECT_EQ(item["index"], i);
    double norm = 0;
    for (const json& v : item["embedding"]) norm += v.get<double>() * v.get<double>();
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-4);
    if (i == 0) first = item["embedding"].get<std::vector<float>>();
  }
  EXPECT_NE(reply.body["data"][0]["embedding"], reply.body["data"][1]["embedding"]);
  EXPECT_GT(reply.body["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_EQ(reply.body["usage"]["total_tokens"], reply.body["usage"]["prompt_tokens"]);

  Reply base64 = Post("/v1/embeddings", {{"input", "first text"}, {"encoding_format", "base64"}});
  ASSERT_EQ(base64.status, 200) << base64.raw;
  std::string bytes;
  ASSERT_TRUE(absl::Base64Unescape(base64.body["data"][0]["embedding"].get<std::string>(), &bytes));
  ASSERT_EQ(bytes.size(), first.size() * sizeof(float));
  std::vector<float> decoded(first.size());
  std::memcpy(decoded.data(), bytes.data(), bytes.size());
  EXPECT_EQ(decoded, first);
}

TEST_F(EngineServerTest, MetricsUseVllmNamesWithTheTriplanePrefix) {
  ASSERT_EQ(Post("/v1/completions", Greedy("Count me", 3)).status, 200);
  Reply metrics = Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  for (const char* name :
       {"triplane_num_requests_running", "triplane_num_requests_waiting",
        "triplane_kv_cache_usage_perc", "triplane_prefix_cache_queries_total",
        "triplane_prefix_cache_hits_total", "triplane_num_preemptions_total",
        "triplane_prompt_tokens_total", "triplane_generation_tokens_total",
        "triplane_request_success_total{", "triplane_time_to_first_token_seconds_bucket",
        "triplane_time_per_output_token_seconds_bucket",
        "triplane_e2e_request_latency_seconds_bucket", "triplane_request_queue_time_seconds_count",
        "triplane_iteration_tokens_bucket", "triplane_http_requests_total{",
        "process_resident_memory_bytes"}) {
    EXPECT_THAT(metrics.raw, HasSubstr(name));
  }
  // The engine reports queue times and step sizes, not just empty families.
  EXPECT_THAT(metrics.raw, Not(HasSubstr("triplane_request_queue_time_seconds_count 0\n")));
  EXPECT_THAT(metrics.raw, Not(HasSubstr("triplane_iteration_tokens_count 0\n")));
  const std::filesystem::path file = *dir_ / "metrics.txt";
  std::ofstream(file) << metrics.raw;
  const std::filesystem::path out = *dir_ / "promtool.txt";
  auto promtool = common::Subprocess::Spawn(
      {.argv = {"/bin/sh", "-c", "promtool check metrics < " + file.string()},
       .stdout_path = out.string(),
       .stderr_path = out.string()});
  ASSERT_TRUE(promtool.ok());
  auto status = (*promtool)->Wait(60s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code, 0) << testing::ReadWholeFile(out);
}

TEST_F(EngineServerTest, ATinyKvPoolPreemptsAndEveryRequestStillCompletesExactly) {
  auto model = engine::Model::Load(model_->string(), {.huge_pages = false});
  ASSERT_TRUE(model.ok()) << model.status();
  // One context of 256 positions (16 blocks); four requests of ~120 positions need ~32.
  const int64_t kv = 16 * engine::PagedKvCache::BytesPerBlock((*model)->config());
  std::vector<std::string> alone(4);
  for (int i = 0; i < 4; ++i) {
    Reply reply = Post("/v1/completions", Greedy("Preempt me please, request " + std::to_string(i), 100));
    ASSERT_EQ(reply.status, 200) << reply.raw;
    alone[i] = reply.body["choices"][0]["text"];
  }
  auto tiny = EngineProcess::Start(*dir_, *model_,
                                   {"--ctx", "256", "--max-seqs", "4", "--kv-memory", std::to_string(kv)});
  ASSERT_NE(tiny, nullptr);
  std::vector<Reply> replies(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      replies[i] = Call(tiny->url(), HttpMethod::kPost, "/v1/completions",
                        Greedy("Preempt me please, request " + std::to_string(i), 100));
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(replies[i].status, 200) << replies[i].raw;
    EXPECT_EQ(replies[i].body["choices"][0]["text"], alone[i]) << i;
    EXPECT_EQ(replies[i].body["choices"][0]["finish_reason"], "length");
  }
  // The four requests above overlap only as much as the machine's timing lets them; four
  // choices of one request always run together, and need twice the pool.
  json together = Greedy("Preempt me please, request 0", 100);
  together["n"] = 4;
  const Reply four = Call(tiny->url(), HttpMethod::kPost, "/v1/completions", together);
  ASSERT_EQ(four.status, 200) << four.raw;
  ASSERT_EQ(four.body["choices"].size(), 4u);
  for (const json& choice : four.body["choices"]) EXPECT_EQ(choice["text"], alone[0]);
  EXPECT_GT(Metric(tiny->url(), "triplane_num_preemptions_total"), 0);
  EXPECT_EQ(Metric(tiny->url(), "triplane_kv_cache_usage_perc"), 0);
}

TEST_F(EngineServerTest, QueueFullIs503) {
  auto small = EngineProcess::Start(*dir_, *model_,
                                    {"--ctx", "512", "--max-seqs", "1", "--max-waiting", "1"});
  ASSERT_NE(small, nullptr);
  HttpClient client;
  std::atomic<int> events{0};
  auto running = client.Stream(
      {.method = HttpMethod::kPost,
       .url = small->url() + "/v1/completions",
       .body = json{{"prompt", "A"}, {"max_tokens", 480}, {"ignore_eos", true}, {"stream", true}}
                   .dump()},
      {.on_head = [](int, const common::HttpHeaders&) {},
       .on_data =
           [&](std::string_view) {
             ++events;
             return true;
           },
       .on_done = [](absl::Status) {}});
  for (int i = 0; i < 500 && events < 2; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_GE(events.load(), 2);
  // One waits (max-seqs 1), the next finds the queue full.
  std::atomic<int> waiting_status{0};
  client.SendAsync(
      {.method = HttpMethod::kPost,
       .url = small->url() + "/v1/completions",
       .body = json{{"prompt", "B"}, {"max_tokens", 2}}.dump()},
      [&](absl::StatusOr<common::HttpResponse> r) { waiting_status = r.ok() ? r->status : -1; });
  for (int i = 0; i < 500 && Metric(small->url(), "triplane_num_requests_waiting") < 1; ++i)
    std::this_thread::sleep_for(10ms);
  Reply full = Call(small->url(), HttpMethod::kPost, "/v1/completions",
                    {{"prompt", "C"}, {"max_tokens", 2}});
  EXPECT_EQ(full.status, 503) << full.raw;
  EXPECT_EQ(full.body["error"]["type"], "service_unavailable_error");
  EXPECT_EQ(full.body["error"]["code"], "queue_full");
  running->Cancel();
  for (int i = 0; i < 1000 && waiting_status == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(waiting_status.load(), 200);
}

TEST_F(EngineServerTest, SigtermDrainsInFlightStreamsThenExits) {
  auto engine = EngineProcess::Start(*dir_, *model_, {"--ctx", "512", "--drain-timeout", "30"});
  ASSERT_NE(engine, nullptr);
  Stream stream;
  std::atomic<bool> started{false};
  std::thread client([&] {
    HttpClient http;
    common::HttpClientRequest request{.method = HttpMethod::kPost,
                                      .url = engine->url() + "/v1/completions",
                                      .body = json{
                                          {"prompt", "Drain me"},
                                          {"max_tokens", 400},
                                          {"ignore_eos", true},
                                          {"stream",
                                           true}}.dump()};
    absl::Status status = http.ReadSse(std::move(request), [&](const common::SseEvent& event) {
      started = true;
      if (event.data == "[DONE]") {
        stream.done = true;
      } else if (auto chunk = common::ParseJson(event.data); chunk.ok()) {
        stream.chunks.push_back(*chunk);
      }
      return true;
    });
    stream.error = std::string(status.message());
  });
  for (int i = 0; i < 500 && !started; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(started);
  ASSERT_TRUE(engine->child().Signal(SIGTERM));
  // Draining: health says so, new work is refused, the stream goes on.
  Reply health;
  for (int i = 0; i < 200; ++i) {
    health = Call(engine->url(), HttpMethod::kGet, "/health");
    if (health.status == 503) break;
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.body["status"], "draining");
  Reply refused = Call(engine->url(), HttpMethod::kPost, "/v1/completions", {{"prompt", "late"}});
  EXPECT_EQ(refused.status, 503) << refused.raw;
  client.join();
  EXPECT_EQ(stream.error, "");
  EXPECT_TRUE(stream.done);
  ASSERT_FALSE(stream.chunks.empty());
  EXPECT_EQ(stream.chunks.back()["choices"][0]["finish_reason"], "length");
  auto exit = engine->child().Wait(30s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->code, 0) << exit->ToString() << engine->log();
}

}  // namespace
}  // namespace triplane
