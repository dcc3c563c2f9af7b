// The hostile-input sweep (docs/reliability.md, "Hostile input"): a table of malformed
// and hostile requests sent over raw sockets to a real `triplane serve` (the gateway's
// /v1 routes, the admin API, /health, /metrics and the web files) and to the demo
// model's real engine (its /v1 routes, /tokenize, /detokenize). Every row names the 4xx
// the server must answer (or 0: the server must close the connection without an
// answer); every JSON error must be an OpenAI-style body; /health must answer after
// every row; and the store must be as it was: models, versions, deployments, instances
// (so no engine was started), keys, teams, config, backends, pulls and audit rows.
// Refused admin calls write no audit row (only mutations are audited). Refused requests
// that reached the engine through the gateway get a usage row each (the ledger counts
// errors too), with status 400 and no tokens; the table says which rows do.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "common/http_client.h"
#include "common/strings.h"
#include "fmt/format.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/raw_http.h"
#include "testing/serve_process.h"

namespace triplane {
namespace {

using namespace std::chrono_literals;
using common::HttpMethod;
using nlohmann::json;
using testing::ClosedOnSlowClient;
using testing::RawExchange;
using testing::RawResponse;

// The body limit serve runs with: a 10 MB body is under it, limit + 1 bytes are over.
constexpr size_t kBodyLimit = 12'000'000;
constexpr size_t kTenMegabytes = 10'000'000;

// ---- Requests ----

// One request's bytes: `METHOD TARGET HTTP/1.1`, Host, Connection: close, the key (as
// Authorization: Bearer) when given, `headers` as written (each ending in \r\n), a
// Content-Length and the body when the method has one.
std::string Http(std::string_view method, std::string_view target, std::string_view key,
                 std::string_view body = "", std::string_view headers = "",
                 std::string_view content_type = "application/json") {
  std::string out = fmt::format("{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, target);
  if (!key.empty()) out += fmt::format("Authorization: Bearer {}\r\n", key);
  out += headers;
  const bool has_body = !body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
  if (has_body) {
    if (!content_type.empty()) out += fmt::format("Content-Type: {}\r\n", content_type);
    out += fmt::format("Content-Length: {}\r\n", body.size());
  }
  out += "\r\n";
  out += body;
  return out;
}

enum class Plane { kServe, kEngine };

struct Row {
  std::string name;
  Plane plane;
  std::string request;   // the bytes sent
  int status;            // the answer it must get; 0: closed without one
  bool forwarded = false;  // reaches the engine through the gateway (one usage row)
  bool json_error = true;  // the answer is an OpenAI-style JSON error
  bool slow = false;       // sent byte by byte (see ClosedOnSlowClient)
};

struct Context {
  std::string admin_key, user_key;
  int serve_port = 0, engine_port = 0;
  std::string data_dir;
};

// The JSON-body endpoints, each with the key it is called with.
struct JsonEndpoint {
  std::string method, path;
  Plane plane;
  bool admin;  // admin key (else the user key on serve, no key on the engine)
};

std::vector<JsonEndpoint> JsonEndpoints() {
  return {
      {"POST", "/v1/chat/completions", Plane::kServe, false},
      {"POST", "/v1/completions", Plane::kServe, false},
      {"POST", "/v1/embeddings", Plane::kServe, false},
      {"POST", "/v1/chat/completions", Plane::kEngine, false},
      {"POST", "/v1/completions", Plane::kEngine, false},
      {"POST", "/v1/embeddings", Plane::kEngine, false},
      {"POST", "/tokenize", Plane::kEngine, false},
      {"POST", "/detokenize", Plane::kEngine, false},
      {"POST", "/admin/v1/models", Plane::kServe, true},
      {"POST", "/admin/v1/models/sweep/versions", Plane::kServe, true},
      {"POST", "/admin/v1/pulls", Plane::kServe, true},
      {"POST", "/admin/v1/deployments", Plane::kServe, true},
      {"PATCH", "/admin/v1/deployments/demo", Plane::kServe, true},
      {"POST", "/admin/v1/deployments/demo/rollout", Plane::kServe, true},
      {"POST", "/admin/v1/keys", Plane::kServe, true},
      {"POST", "/admin/v1/teams", Plane::kServe, true},
      {"PUT", "/admin/v1/config/sweep.key", Plane::kServe, true},
      {"POST", "/admin/v1/usage", Plane::kServe, true},
      {"PUT", "/admin/v1/backends/sweep", Plane::kServe, true},
  };
}

std::string Repeat(std::string_view piece, size_t times) {
  std::string out;
  out.reserve(piece.size() * times);
  for (size_t i = 0; i < times; ++i) out += piece;
  return out;
}

// Bodies that are not one well-formed JSON object (or nest too deep): 400 everywhere.
std::vector<std::pair<std::string, std::string>> BadJsonBodies() {
  return {
      {"truncated", R"({"model": "demo", "messages": [{"role": "user", "content": "hi")"},
      {"trailing garbage", R"({"model": "demo"} trailing)"},
      {"two objects", R"({"model": "demo"}{"model": "demo"})"},
      {"top-level array", R"([{"model": "demo"}])"},
      {"top-level string", R"("model")"},
      {"top-level number", "42"},
      {"top-level null", "null"},
      {"empty body", ""},
      {"invalid UTF-8 in a string", "{\"model\": \"de\xff\xfemo\", \"name\": \"\xc3\x28\"}"},
      {"lone surrogate escape", R"({"model": "\ud800", "name": "\ud800"})"},
      {"NaN literal", R"({"model": "demo", "temperature": NaN, "replicas": NaN})"},
      {"Infinity literal", R"({"model": "demo", "max_tokens": Infinity, "replicas": -Infinity})"},
      {"comment", R"({"model": "demo" /* a comment */})"},
      {"single quotes", R"({'model': 'demo'})"},
      {"hex number", R"({"model": "demo", "max_tokens": 0x10})"},
      {"leading zeros", R"({"model": "demo", "max_tokens": 007})"},
      {"raw control character", "{\"model\": \"de\x01mo\"}"},
      {"10,000 unclosed [", Repeat("[", 10'000)},
      {"10,000 nested arrays in a field",
       R"({"model": "demo", "name": "x", "messages": )" + Repeat("[", 10'000) + Repeat("]", 10'000) + "}"},
      {"10,000 nested objects", Repeat(R"({"a":)", 10'000) + "1" + Repeat("}", 10'000)},
  };
}

void AddBadJsonRows(const Context& c, std::vector<Row>& rows) {
  for (const JsonEndpoint& e : JsonEndpoints()) {
    const std::string key = e.admin ? c.admin_key : e.plane == Plane::kServe ? c.user_key : "";
    for (const auto& [what, body] : BadJsonBodies()) {
      rows.push_back({fmt::format("{} {} ({}): {}", e.method, e.path,
                                  e.plane == Plane::kServe ? "serve" : "engine", what),
                      e.plane, Http(e.method, e.path, key, body), 400});
    }
  }
}

// Bodies of the generation endpoints with one field wrong; `model` is added per plane.
std::vector<std::pair<std::string, json>> BadChatBodies() {
  const json hi = json::array({{{"role", "user"}, {"content", "hi"}}});
  auto chat = [&](json extra) {
    json body = {{"messages", hi}, {"max_tokens", 1}};
    for (auto& [k, v] : extra.items()) body[k] = v;
    return body;
  };
  std::vector<std::string> hundred_stops;
  for (int i = 0; i < 100; ++i) hundred_stops.push_back("stop" + std::to_string(i));
  return {
      {"max_tokens \"x\"", chat({{"max_tokens", "x"}})},
      {"max_tokens 2^64", chat({{"max_tokens", 18446744073709551616.0}})},
      {"max_tokens 2^64-1", chat({{"max_tokens", 18446744073709551615ULL}})},
      {"max_tokens -1", chat({{"max_tokens", -1}})},
      {"max_tokens 0", chat({{"max_tokens", 0}})},
      {"max_tokens beyond the context", chat({{"max_tokens", 1'000'000'000}})},
      {"messages 5", chat({{"messages", 5}})},
      {"messages []", chat({{"messages", json::array()}})},
      {"messages [5]", chat({{"messages", {5}}})},
      {"message without role", chat({{"messages", {{{"content", "hi"}}}}})},
      {"role 5", chat({{"messages", {{{"role", 5}, {"content", "hi"}}}}})},
      {"content 5", chat({{"messages", {{{"role", "user"}, {"content", 5}}}}})},
      {"image part with a file URL",
       chat({{"messages",
              {{{"role", "user"},
                {"content", {{{"type", "image_url"}, {"image_url", {{"url", "file:///etc/passwd"}}}}}}}}}})},
      {"temperature \"hot\"", chat({{"temperature", "hot"}})},
      {"temperature -1", chat({{"temperature", -1}})},
      {"temperature 1e300", chat({{"temperature", 1e300}})},
      {"top_p 0", chat({{"top_p", 0}})},
      {"top_p 2", chat({{"top_p", 2}})},
      {"top_k -5", chat({{"top_k", -5}})},
      {"top_k 1.5", chat({{"top_k", 1.5}})},
      {"min_p 2", chat({{"min_p", 2}})},
      {"presence_penalty 5", chat({{"presence_penalty", 5}})},
      {"frequency_penalty \"x\"", chat({{"frequency_penalty", "x"}})},
      {"repetition_penalty 0", chat({{"repetition_penalty", 0}})},
      {"n 1e9", chat({{"n", 1e9}})},
      {"n 1000000000", chat({{"n", 1'000'000'000}})},
      {"n 0", chat({{"n", 0}})},
      {"n -1", chat({{"n", -1}})},
      {"stop of 100 strings", chat({{"stop", hundred_stops}})},
      {"stop 5", chat({{"stop", 5}})},
      {"stop [\"\"]", chat({{"stop", {""}}})},
      {"stop of 1,000 bytes", chat({{"stop", {std::string(1000, 's')}}})},
      {"stop_token_ids [-1]", chat({{"stop_token_ids", {-1}}})},
      {"stop_token_ids [\"x\"]", chat({{"stop_token_ids", {"x"}}})},
      {"logit_bias {\"abc\": 1}", chat({{"logit_bias", {{"abc", 1}}}})},
      {"logit_bias {\"1\": 1000}", chat({{"logit_bias", {{"1", 1000}}}})},
      {"logit_bias {\"99999999999\": 1}", chat({{"logit_bias", {{"99999999999", 1}}}})},
      {"logit_bias []", chat({{"logit_bias", json::array()}})},
      {"seed \"x\"", chat({{"seed", "x"}})},
      {"seed 2^64", chat({{"seed", 18446744073709551616.0}})},
      {"stream \"yes\"", chat({{"stream", "yes"}})},
      {"stream_options 5", chat({{"stream", true}, {"stream_options", 5}})},
      {"stream_options.include_usage \"yes\"", chat({{"stream", true}, {"stream_options", {{"include_usage", "yes"}}}})},
      {"stream_options []", chat({{"stream", true}, {"stream_options", json::array()}})},
      {"logprobs \"x\"", chat({{"logprobs", "x"}})},
      {"top_logprobs 100", chat({{"logprobs", true}, {"top_logprobs", 100}})},
      {"tools", chat({{"tools", {{{"type", "function"}, {"function", {{"name", "f"}}}}}}})},
      {"response_format json_object", chat({{"response_format", {{"type", "json_object"}}}})},
      {"chat_template_kwargs 5", chat({{"chat_template_kwargs", 5}})},
      {"add_generation_prompt \"x\"", chat({{"add_generation_prompt", "x"}})},
  };
}

std::vector<std::pair<std::string, json>> BadCompletionBodies() {
  auto completion = [](json extra) {
    json body = {{"prompt", "hi"}, {"max_tokens", 1}};
    for (auto& [k, v] : extra.items()) body[k] = v;
    return body;
  };
  std::vector<std::string> many_prompts(65, "hi");
  return {
      {"no prompt", json{{"max_tokens", 1}}},
      {"prompt 5", completion({{"prompt", 5}})},
      {"prompt {}", completion({{"prompt", json::object()}})},
      {"prompt [[-1]]", completion({{"prompt", {{-1}}}})},
      {"prompt [99999999]", completion({{"prompt", {99999999}}})},
      {"prompt [2^64-1]", completion({{"prompt", {18446744073709551615ULL}}})},
      {"prompt [1.5]", completion({{"prompt", {1.5}}})},
      {"prompt [[\"a\"]]", completion({{"prompt", {{"a"}}}})},
      {"65 prompts", completion({{"prompt", many_prompts}})},
      {"echo", completion({{"echo", true}})},
      {"suffix", completion({{"suffix", "x"}})},
      {"best_of 2", completion({{"best_of", 2}})},
      {"logprobs 21", completion({{"logprobs", 21}})},
      {"logprobs -1", completion({{"logprobs", -1}})},
      {"add_special_tokens \"x\"", completion({{"add_special_tokens", "x"}})},
      {"max_tokens \"x\"", completion({{"max_tokens", "x"}})},
      {"n 1e9", completion({{"n", 1e9}})},
  };
}

std::vector<std::pair<std::string, json>> BadEmbeddingBodies() {
  std::vector<std::string> many_inputs(65, "hi");
  return {
      {"no input", json::object()},
      {"input 5", json{{"input", 5}}},
      {"input {}", json{{"input", json::object()}}},
      {"input [[-1]]", json{{"input", {{-1}}}}},
      {"input [99999999]", json{{"input", {99999999}}}},
      {"65 inputs", json{{"input", many_inputs}}},
      {"encoding_format \"hex\"", json{{"input", "hi"}, {"encoding_format", "hex"}}},
      {"dimensions 1000000000", json{{"input", "hi"}, {"dimensions", 1'000'000'000}}},
      {"dimensions \"x\"", json{{"input", "hi"}, {"dimensions", "x"}}},
  };
}

// Numbers no parser can hold: the gateway refuses them itself (never forwarded).
std::vector<std::pair<std::string, std::string>> UnparsableNumberBodies() {
  const std::string hi = R"("messages": [{"role": "user", "content": "hi"}], "prompt": "hi", "input": "hi")";
  std::vector<std::pair<std::string, std::string>> bodies;
  for (const char* field : {"max_tokens", "n", "temperature", "top_k", "seed", "logprobs", "dimensions"}) {
    bodies.push_back({fmt::format("{} 1e400", field), fmt::format("{{{}, \"{}\": 1e400}}", hi, field)});
    bodies.push_back({fmt::format("{} -1e400", field), fmt::format("{{{}, \"{}\": -1e400}}", hi, field)});
  }
  return bodies;
}

void AddGenerationRows(const Context& c, std::vector<Row>& rows) {
  const std::pair<std::string, std::vector<std::pair<std::string, json>>> endpoints[] = {
      {"/v1/chat/completions", BadChatBodies()},
      {"/v1/completions", BadCompletionBodies()},
      {"/v1/embeddings", BadEmbeddingBodies()},
  };
  for (const auto& [path, bodies] : endpoints) {
    for (const auto& [what, body] : bodies) {
      // Through the gateway: a well-formed body for a deployed model is forwarded, and
      // the engine refuses it.
      json with_model = body;
      with_model["model"] = "demo";
      rows.push_back({fmt::format("POST {} (serve): {}", path, what), Plane::kServe,
                      Http("POST", path, c.user_key, with_model.dump()), 400, /*forwarded=*/true});
      rows.push_back({fmt::format("POST {} (engine): {}", path, what), Plane::kEngine,
                      Http("POST", path, "", body.dump()), 400});
    }
    for (const auto& [what, body] : UnparsableNumberBodies()) {
      rows.push_back({fmt::format("POST {} (serve): {}", path, what), Plane::kServe,
                      Http("POST", path, c.user_key, R"({"model": "demo", )" + body.substr(1)), 400});
      rows.push_back({fmt::format("POST {} (engine): {}", path, what), Plane::kEngine,
                      Http("POST", path, "", body), 400});
    }
  }
  // The model field, seen by the gateway (never forwarded) and by the engine.
  const std::pair<std::string, json> models[] = {
      {"model 5", 5},
      {"model \"\"", ""},
      {"model null", nullptr},
      {"model [\"demo\"]", json::array({"demo"})},
  };
  for (const auto& [what, model] : models) {
    const json body = {{"model", model}, {"prompt", "hi"}, {"max_tokens", 1}};
    rows.push_back({"POST /v1/completions (serve): " + what, Plane::kServe,
                    Http("POST", "/v1/completions", c.user_key, body.dump()), 400});
  }
  for (const char* model : {"../../etc/passwd", "/etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                            "demo/../../../etc/passwd", "file:///etc/passwd"}) {
    const json chat = {{"model", model}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    rows.push_back({std::string("POST /v1/chat/completions (serve): model ") + model, Plane::kServe,
                    Http("POST", "/v1/chat/completions", c.user_key, chat.dump()), 404});
    rows.push_back({std::string("POST /v1/chat/completions (engine): model ") + model, Plane::kEngine,
                    Http("POST", "/v1/chat/completions", "", chat.dump()), 404});
  }
  // The engine's own token endpoints.
  const std::pair<std::string, std::pair<std::string, json>> token_rows[] = {
      {"/tokenize", {"neither prompt nor messages", json::object()}},
      {"/tokenize", {"both prompt and messages",
                     {{"prompt", "a"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}}},
      {"/tokenize", {"prompt 5", {{"prompt", 5}}}},
      {"/tokenize", {"messages 5", {{"messages", 5}}}},
      {"/tokenize", {"add_special_tokens \"x\"", {{"prompt", "a"}, {"add_special_tokens", "x"}}}},
      {"/detokenize", {"no tokens", json::object()}},
      {"/detokenize", {"tokens \"x\"", {{"tokens", "x"}}}},
      {"/detokenize", {"tokens [-1]", {{"tokens", {-1}}}}},
      {"/detokenize", {"tokens [99999999]", {{"tokens", {99999999}}}}},
      {"/detokenize", {"tokens [2^64-1]", {{"tokens", {18446744073709551615ULL}}}}},
      {"/detokenize", {"tokens [1e300]", {{"tokens", {1e300}}}}},
  };
  for (const auto& [path, what_body] : token_rows) {
    rows.push_back({fmt::format("POST {} (engine): {}", path, what_body.first), Plane::kEngine,
                    Http("POST", path, "", what_body.second.dump()), 400});
  }
}

// Admin bodies with a wrong, hostile or conflicting field.
void AddAdminFieldRows(const Context& c, std::vector<Row>& rows) {
  struct AdminCase {
    std::string method, path;
    json body;
    int status;
  };
  const std::string long_name(200, 'a');
  std::vector<AdminCase> cases = {
      // Models, and versions added by path (any GGUF file on the machine; others refused).
      {"POST", "/admin/v1/models", {{"name", 5}}, 400},
      {"POST", "/admin/v1/models", {{"name", ""}}, 400},
      {"POST", "/admin/v1/models", {{"name", "../../etc/passwd"}}, 400},
      {"POST", "/admin/v1/models", {{"name", "/etc/passwd"}}, 400},
      {"POST", "/admin/v1/models", {{"name", "%2e%2e%2fetc"}}, 400},
      {"POST", "/admin/v1/models", {{"name", long_name}}, 400},
      {"POST", "/admin/v1/models", {{"name", "a b"}}, 400},
      {"POST", "/admin/v1/models", {{"name", "x"}, {"description", 5}}, 400},
      {"POST", "/admin/v1/models", {{"name", "demo"}}, 409},
      {"POST", "/admin/v1/models/sweep/versions", {{"path", 5}}, 400},
      {"POST", "/admin/v1/models/sweep/versions", {{"path", ""}}, 400},
      {"POST", "/admin/v1/models/sweep/versions", {{"path", "/etc/passwd"}}, 400},
      {"POST", "/admin/v1/models/sweep/versions", {{"path", "../../../../../../etc/passwd"}}, 400},
      {"POST", "/admin/v1/models/sweep/versions", {{"path", "/dev/zero"}}, 400},
      {"POST", "/admin/v1/models/sweep/versions", {{"path", "/proc/self/environ"}}, 400},
      {"POST", "/admin/v1/models/sweep/versions", {{"path", "/"}}, 400},
      {"POST", "/admin/v1/models/sweep/versions", {{"path", "/nonexistent/model.gguf"}}, 400},
      {"POST", "/admin/v1/models/sweep/versions", {{"path", c.data_dir + "/admin.key"}}, 400},
      {"POST", "/admin/v1/models/sweep/versions", {{"path", c.data_dir + "/triplane.db"}}, 400},
      {"POST", "/admin/v1/models/sweep/versions", {{"path", "/etc/passwd"}, {"version", "../x"}}, 400},
      {"POST", "/admin/v1/models/%2Fetc%2Fpasswd/versions", {{"path", "/etc/passwd"}}, 400},
      {"POST", "/admin/v1/models/..%2F..%2Fetc/versions", {{"path", "/etc/passwd"}}, 400},
      // Pulls (more below): only http(s):// and hf://, never from the control plane itself.
      {"POST", "/admin/v1/pulls", {{"model", "../x"}, {"url", "http://example.invalid/m.gguf"}}, 400},
      {"POST", "/admin/v1/pulls",
       {{"model", "sweep"}, {"url", "http://example.invalid/m.gguf"}, {"sha256", "zz"}}, 400},
      {"POST", "/admin/v1/pulls", {{"model", "sweep"}, {"url", 5}}, 400},
      {"POST", "/admin/v1/pulls", {{"url", "http://example.invalid/m.gguf"}}, 400},
      // Deployments.
      {"POST", "/admin/v1/deployments", {{"name", "x"}, {"model", 5}}, 400},
      {"POST", "/admin/v1/deployments", {{"name", "x"}}, 400},
      {"POST", "/admin/v1/deployments", {{"name", "x"}, {"model", "nope"}}, 404},
      {"POST", "/admin/v1/deployments", {{"name", "../x"}, {"model", "demo"}}, 400},
      {"POST", "/admin/v1/deployments", {{"name", "x"}, {"model", "demo"}, {"replicas", -1}}, 400},
      {"POST", "/admin/v1/deployments", {{"name", "x"}, {"model", "demo"}, {"replicas", "2"}}, 400},
      {"POST", "/admin/v1/deployments",
       {{"name", "x"}, {"model", "demo"}, {"replicas", 18446744073709551616.0}}, 400},
      {"POST", "/admin/v1/deployments", {{"name", "x"}, {"model", "demo"}, {"replicas", 1'000'000'000}}, 400},
      {"POST", "/admin/v1/deployments", {{"name", "x"}, {"model", "demo"}, {"version", "../1"}}, 400},
      {"POST", "/admin/v1/deployments", {{"name", "x"}, {"model", "demo"}, {"engine", 5}}, 400},
      {"POST", "/admin/v1/deployments", {{"name", "x"}, {"model", "demo"}, {"engine", {{"threads", -1}}}}, 400},
      {"POST", "/admin/v1/deployments", {{"name", "x"}, {"model", "demo"}, {"engine", {{"threads", "x"}}}}, 400},
      {"POST", "/admin/v1/deployments", {{"name", "x"}, {"model", "demo"}, {"engine", {{"kv_type", "q4_0"}}}}, 400},
      {"POST", "/admin/v1/deployments", {{"name", "x"}, {"model", "demo"}, {"engine", {{"kv_type", 8}}}}, 400},
      {"POST", "/admin/v1/deployments",
       {{"name", "x"}, {"model", "demo"}, {"autoscale", {{"max_replicas", 100000}}}}, 400},
      {"POST", "/admin/v1/deployments",
       {{"name", "x"}, {"model", "demo"}, {"autoscale", {{"metric", "vibes"}}}}, 400},
      {"POST", "/admin/v1/deployments", {{"name", "x"}, {"model", "demo"}, {"autoscale", 5}}, 400},
      {"POST", "/admin/v1/deployments", {{"name", "demo"}, {"model", "demo"}}, 409},
      {"PATCH", "/admin/v1/deployments/demo", {{"replicas", -1}}, 400},
      {"PATCH", "/admin/v1/deployments/demo", {{"replicas", "2"}}, 400},
      {"PATCH", "/admin/v1/deployments/demo", {{"replicas", 18446744073709551616.0}}, 400},
      {"PATCH", "/admin/v1/deployments/demo", {{"replicas", 1'000'000'000}}, 400},
      {"PATCH", "/admin/v1/deployments/demo", {{"model", "other"}}, 400},
      {"PATCH", "/admin/v1/deployments/demo", {{"version", "nope"}}, 404},
      {"PATCH", "/admin/v1/deployments/demo", {{"engine", 5}}, 400},
      {"PATCH", "/admin/v1/deployments/demo", {{"engine", {{"threads", "x"}}}}, 400},
      {"PATCH", "/admin/v1/deployments/demo", {{"engine", {{"kv_type", "../f16"}}}}, 400},
      {"PATCH", "/admin/v1/deployments/demo", {{"autoscale", 5}}, 400},
      {"PATCH", "/admin/v1/deployments/demo", {{"autoscale", {{"min_replicas", -1}}}}, 400},
      {"PATCH", "/admin/v1/deployments/demo", {{"if_generation", "x"}, {"replicas", 2}}, 400},
      {"PATCH", "/admin/v1/deployments/demo", {{"if_generation", 999999}, {"replicas", 2}}, 409},
      {"PATCH", "/admin/v1/deployments/nope", {{"replicas", 1}}, 404},
      {"POST", "/admin/v1/deployments/demo/rollout", {{"version", 5}}, 400},
      {"POST", "/admin/v1/deployments/demo/rollout", json::object(), 400},
      {"POST", "/admin/v1/deployments/demo/rollout", {{"version", "1"}}, 409},
      {"POST", "/admin/v1/deployments/demo/rollout", {{"version", "nope"}}, 404},
      {"POST", "/admin/v1/deployments/nope/rollout", {{"version", "1"}}, 404},
      {"POST", "/admin/v1/deployments/demo/rollout/promote", {{"evil", true}}, 409},
      {"POST", "/admin/v1/deployments/demo/rollout/abort", {{"evil", true}}, 409},
      {"POST", "/admin/v1/deployments/demo/rollback", {{"evil", true}}, 409},
      {"POST", "/admin/v1/deployments/nope/wake", json::object(), 404},
      // Deleting what is in use or does not exist.
      {"DELETE", "/admin/v1/models/demo", nullptr, 409},
      {"DELETE", "/admin/v1/models/demo/versions/1", nullptr, 409},
      {"DELETE", "/admin/v1/models/nope", nullptr, 404},
      {"DELETE", "/admin/v1/deployments/nope", nullptr, 404},
      {"DELETE", "/admin/v1/keys/nope", nullptr, 404},
      {"DELETE", "/admin/v1/teams/nope", nullptr, 404},
      {"DELETE", "/admin/v1/config/nope.nothing", nullptr, 404},
      {"DELETE", "/admin/v1/pulls/nope", nullptr, 404},
      {"DELETE", "/admin/v1/pulls/pull-999999999999999999999", nullptr, 404},
      // Keys and teams.
      {"POST", "/admin/v1/keys", {{"name", 5}}, 400},
      {"POST", "/admin/v1/keys", {{"name", "k"}, {"role", "root"}}, 400},
      {"POST", "/admin/v1/keys", {{"name", "k"}, {"expires_at", "tomorrow"}}, 400},
      {"POST", "/admin/v1/keys", {{"name", "k"}, {"expires_at", 5}}, 400},
      {"POST", "/admin/v1/keys", {{"name", "k"}, {"allowed_models", "demo"}}, 400},
      {"POST", "/admin/v1/keys", {{"name", "k"}, {"allowed_models", {5}}}, 400},
      {"POST", "/admin/v1/keys", {{"name", "k"}, {"team", "nope"}}, 404},
      {"POST", "/admin/v1/teams", {{"name", 5}}, 400},
      {"POST", "/admin/v1/teams", {{"name", ""}}, 400},
      {"POST", "/admin/v1/teams", {{"name", "../../etc"}}, 400},
      {"POST", "/admin/v1/teams", {{"name", "a b"}}, 400},
      // Config.
      {"PUT", "/admin/v1/config/sweep.key", {{"valu", 1}}, 400},
      {"PUT", "/admin/v1/config/bad%20key", {{"value", 1}}, 400},
      {"PUT", "/admin/v1/config/%FF%FE", {{"value", 1}}, 400},
      {"PUT", "/admin/v1/config/" + std::string(300, 'k'), {{"value", 1}}, 400},
      // Usage ingestion.
      {"POST", "/admin/v1/usage", {{"records", 5}}, 400},
      {"POST", "/admin/v1/usage", {{"records", "x"}}, 400},
      {"POST", "/admin/v1/usage", {{"records", {5}}}, 400},
      {"POST", "/admin/v1/usage", {{"records", {{{"request_id", "r"}, {"time", "yesterday"}}}}}, 400},
      {"POST", "/admin/v1/usage", {{"records", {{{"request_id", 5}}}}}, 400},
      {"POST", "/admin/v1/usage",
       {{"records", {{{"request_id", "r"}, {"prompt_tokens", 18446744073709551616.0}}}}}, 400},
      {"POST", "/admin/v1/usage",
       {{"records", {{{"request_id", "r"}, {"time", "2024-01-01T00:00:00Z"}, {"prompt_tokens", 18446744073709551616.0}}}}},
       400},
      {"POST", "/admin/v1/usage",
       {{"records", {{{"request_id", "r"}, {"time", "2024-01-01T00:00:00Z"}, {"prompt_tokens", -5}}}}}, 400},
      {"POST", "/admin/v1/usage",
       {{"records", {{{"request_id", "r"}, {"time", "2024-01-01T00:00:00Z"}, {"completion_tokens", 1.5}}}}}, 400},
      {"POST", "/admin/v1/usage",
       {{"records", {{{"request_id", "r"}, {"time", "2024-01-01T00:00:00Z"}, {"cost_micros", -1}}}}}, 400},
      {"POST", "/admin/v1/usage",
       {{"records", {{{"request_id", "r"}, {"time", "2024-01-01T00:00:00Z"}, {"status", "ok"}}}}}, 400},
      // External backends.
      {"PUT", "/admin/v1/backends/sweep", {{"model", "demo"}, {"base_url", "file:///etc/passwd"}}, 400},
      {"PUT", "/admin/v1/backends/sweep", {{"model", "demo"}, {"base_url", "javascript:alert(1)"}}, 400},
      {"PUT", "/admin/v1/backends/sweep", {{"model", "demo"}, {"base_url", "ftp://example.com/v1"}}, 400},
      {"PUT", "/admin/v1/backends/sweep", {{"model", "demo"}, {"base_url", "http://u:p@example.com/v1"}}, 400},
      {"PUT", "/admin/v1/backends/sweep", {{"model", "demo"}, {"base_url", "http://example.com/v1?x=1"}}, 400},
      {"PUT", "/admin/v1/backends/sweep",
       {{"model", "demo"}, {"base_url", "http://example.com/" + std::string(3000, 'v')}}, 400},
      {"PUT", "/admin/v1/backends/sweep", {{"model", 5}, {"base_url", "http://example.com/v1"}}, 400},
      {"PUT", "/admin/v1/backends/sweep", {{"base_url", "http://example.com/v1"}}, 400},
      {"PUT", "/admin/v1/backends/sweep",
       {{"model", "demo"}, {"base_url", "http://example.com/v1"}, {"api_key", 5}}, 400},
      {"PUT", "/admin/v1/backends/bad%20name", {{"model", "demo"}, {"base_url", "http://example.com/v1"}}, 400},
  };
  // Pull URLs of another scheme, or at serve's own address in any spelling.
  std::vector<std::string> pull_urls = {
      "file:///etc/passwd", "ftp://example.com/m.gguf", "gopher://example.com/m.gguf", "javascript:alert(1)",
      "data:,GGUF", "//example.com/m.gguf", "/etc/passwd", "hf://../../etc/passwd", "hf://org/repo",
      "hf://org/repo/m.gguf@../../x"};
  for (const char* host : {"127.0.0.1", "localhost", "LOCALHOST", "[::1]", "[::ffff:127.0.0.1]", "0.0.0.0", "127.1",
                           "2130706433", "0x7f000001", "user:pw@127.0.0.1"}) {
    pull_urls.push_back(fmt::format("http://{}:{}/admin/v1/models", host, c.serve_port));
  }
  // A backend at serve's own address would forward every request back to serve.
  for (const char* host : {"127.0.0.1", "localhost", "[::1]", "127.1", "0x7f000001"}) {
    cases.push_back({"PUT", "/admin/v1/backends/sweep",
                     {{"model", "demo"}, {"base_url", fmt::format("http://{}:{}/v1", host, c.serve_port)}}, 400});
  }
  for (const std::string& url : pull_urls) {
    cases.push_back({"POST", "/admin/v1/pulls", {{"model", "sweep"}, {"url", url}}, 400});
  }
  for (const AdminCase& a : cases) {
    rows.push_back({fmt::format("{} {}: {}", a.method, a.path, a.body.is_null() ? "" : a.body.dump().substr(0, 120)),
                    Plane::kServe,
                    Http(a.method, a.path, c.admin_key, a.body.is_null() ? "" : a.body.dump()), a.status});
  }
  // Query parameters out of range or of the wrong type.
  for (const char* target :
       {"/admin/v1/audit?limit=abc", "/admin/v1/audit?limit=-1", "/admin/v1/audit?limit=99999999999999999999",
        "/admin/v1/audit?limit=10001", "/admin/v1/audit?order=sideways", "/admin/v1/audit?after_id=x",
        "/admin/v1/audit?before_id=1e400", "/admin/v1/usage?group_by=evil", "/admin/v1/usage?from=garbage",
        "/admin/v1/usage?to=2024-13-45T99:00:00Z", "/admin/v1/usage/records?limit=100001",
        "/admin/v1/usage/records?after_id=x", "/admin/v1/events?limit=1001", "/admin/v1/events?after_id=x",
        "/admin/v1/deployments/demo/events?limit=-5", "/admin/v1/metrics/deployments/demo?window=0",
        "/admin/v1/metrics/deployments/demo?window=1e400", "/admin/v1/metrics/deployments/demo?window=604801",
        "/admin/v1/config/watch?since=-1", "/admin/v1/config/watch?timeout=x",
        "/admin/v1/gateway/state?since=x", "/admin/v1/gateway/state?timeout=x"}) {
    rows.push_back({std::string("GET ") + target, Plane::kServe, Http("GET", target, c.admin_key), 400});
  }
  for (const char* target :
       {"/admin/v1/metrics/deployments/nope", "/admin/v1/metrics/instances/nope",
        "/admin/v1/deployments/nope/events", "/admin/v1/deployments/nope/rollout", "/admin/v1/pulls/nope",
        "/admin/v1/models/%2Fetc%2Fpasswd", "/admin/v1/models/demo/versions/%2Fetc%2Fpasswd",
        "/admin/v1/config/nope.nothing"}) {
    rows.push_back({std::string("GET ") + target, Plane::kServe, Http("GET", target, c.admin_key), 404});
  }
}

// Keys: none, wrong, a user key on admin routes, odd bytes.
void AddAuthRows(const Context& c, std::vector<Row>& rows) {
  const std::vector<std::pair<std::string, std::string>> admin_routes = {
      {"GET", "/admin/v1/overview"},        {"GET", "/admin/v1/models"},
      {"GET", "/admin/v1/keys"},            {"GET", "/admin/v1/audit"},
      {"GET", "/admin/v1/usage"},           {"GET", "/admin/v1/config"},
      {"GET", "/admin/v1/gateway/state"},   {"GET", "/admin/v1/deployments"},
      {"GET", "/admin/v1/config/watch"},    {"POST", "/admin/v1/keys"},
      {"PATCH", "/admin/v1/deployments/demo"}, {"DELETE", "/admin/v1/models/demo"},
      {"PUT", "/admin/v1/config/limits.default"}, {"POST", "/admin/v1/pulls"},
  };
  const std::string escalate = json{{"name", "escalated"}, {"role", "admin"}}.dump();
  for (const auto& [method, path] : admin_routes) {
    const std::string body = method == "GET" || method == "DELETE" ? "" : escalate;
    rows.push_back({method + " " + path + ": no key", Plane::kServe, Http(method, path, "", body), 401});
    rows.push_back({method + " " + path + ": a user key", Plane::kServe, Http(method, path, c.user_key, body), 403});
    rows.push_back({method + " " + path + ": a wrong key", Plane::kServe,
                    Http(method, path, c.admin_key + "x", body), 401});
  }
  const std::string chat = json{{"model", "demo"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}.dump();
  const std::pair<std::string, std::string> public_routes[] = {
      {"POST", "/v1/chat/completions"}, {"POST", "/v1/completions"}, {"POST", "/v1/embeddings"},
      {"GET", "/v1/models"}, {"GET", "/v1/models/demo"}};
  for (const auto& [method, path] : public_routes) {
    const std::string body = method == "GET" ? "" : chat;
    rows.push_back({method + " " + path + ": no key", Plane::kServe, Http(method, path, "", body), 401});
    rows.push_back({method + " " + path + ": a wrong key", Plane::kServe, Http(method, path, "tp-nope", body), 401});
  }
  rows.push_back({"x-api-key of invalid UTF-8 (admin)", Plane::kServe,
                  Http("GET", "/admin/v1/keys", "", "", "x-api-key: \xff\xfe\xc3\x28\r\n"), 401});
  rows.push_back({"Bearer of invalid UTF-8 (public)", Plane::kServe,
                  Http("POST", "/v1/chat/completions", "\xff\xfe\x80", chat), 401});
  rows.push_back({"Basic scheme with the admin key", Plane::kServe,
                  Http("GET", "/admin/v1/keys", "", "", "Authorization: Basic " + c.admin_key + "\r\n"), 401});
  rows.push_back({"x-request-id of invalid UTF-8", Plane::kServe,
                  Http("GET", "/v1/models", "", "", "x-request-id: \xff\xfe\r\n"), 401});
  rows.push_back({"x-session-id of invalid UTF-8 and a bad body", Plane::kServe,
                  Http("POST", "/v1/chat/completions", c.user_key, "{", "x-session-id: \xff\xfe\r\n"), 400});
}

// Path traversal and odd paths, on the web files, the gateway, the admin API and the engine.
void AddPathRows(const Context& c, std::vector<Row>& rows) {
  const std::pair<std::string, int> serve_paths[] = {
      {"/../../etc/passwd", 400},
      {"/%2e%2e/%2e%2e/etc/passwd", 400},
      {"/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 400},
      {"/console/../../../etc/passwd", 400},
      {"/console/%2e%2e/%2e%2e/%2e%2e/etc/passwd", 400},
      {"/index.html%00.js", 400},
      {"/.", 400},
      {"/./index.html", 400},
      {"/etc/passwd", 404},
      {"//etc/passwd", 404},
      {"/..%5c..%5cetc%5cpasswd", 404},
      {"/.env", 404},
      {"/%ff%fe", 404},
      {"/%zz", 404},
      {"/v1/models/..%2f..%2fetc%2fpasswd", 400},
      {"/v1/models/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 400},
      {"/v1/models/%2Fetc%2Fpasswd", 404},
      {"/v1/models/demo%00", 400},
      {"/admin/v1/deployments/%00", 400},
      {"/admin/v1/models/..%2F..%2Fetc%2Fpasswd", 400},
      {"/admin/v1/models/demo/versions/..%2F..%2F..%2Fadmin.key", 400},
      {"/admin/v1/config/..%2f..%2fetc%2fpasswd", 400},
      {"/admin/v1/metrics/instances/..%2f..%2f..%2fproc%2fself%2fenviron", 400},
      {"/admin/v1/nothing", 404},
      {"http://evil.example/v1/models", 400},
      {"*", 400},
  };
  for (const auto& [path, status] : serve_paths) {
    const std::string key = path.starts_with("/admin") ? c.admin_key : c.user_key;
    rows.push_back({"GET " + path, Plane::kServe, Http("GET", path, key), status});
  }
  const std::pair<std::string, int> engine_paths[] = {
      {"/v1/models/..%2f..%2fetc%2fpasswd", 400},
      {"/../../etc/passwd", 400},
      {"/v1/models/%2Fetc%2Fpasswd", 404},
      {"/etc/passwd", 404},
  };
  for (const auto& [path, status] : engine_paths) {
    rows.push_back({"GET " + path + " (engine)", Plane::kEngine, Http("GET", path, ""), status});
  }
}

// Methods that no route has, or that the route does not take.
void AddMethodRows(const Context& c, std::vector<Row>& rows) {
  const std::tuple<std::string, std::string, Plane> cases[] = {
      {"FOO", "/v1/models", Plane::kServe},
      {"BREW", "/health", Plane::kServe},
      {"PROPFIND", "/admin/v1/models", Plane::kServe},
      {"TRACE", "/health", Plane::kServe},
      {"get", "/health", Plane::kServe},
      {"DELETE", "/health", Plane::kServe},
      {"POST", "/health", Plane::kServe},
      {"POST", "/metrics", Plane::kServe},
      {"DELETE", "/", Plane::kServe},
      {"PUT", "/v1/chat/completions", Plane::kServe},
      {"GET", "/v1/chat/completions", Plane::kServe},
      {"GET", "/v1/embeddings", Plane::kServe},
      {"OPTIONS", "/v1/chat/completions", Plane::kServe},
      {"DELETE", "/v1/models", Plane::kServe},
      {"PATCH", "/admin/v1/keys", Plane::kServe},
      {"POST", "/admin/v1/overview", Plane::kServe},
      {"GET", "/admin/v1/deployments/demo/wake", Plane::kServe},
      {"DELETE", "/admin/v1/audit", Plane::kServe},
      {"PUT", "/admin/v1/models", Plane::kServe},
      {"POST", "/admin/v1/config/watch", Plane::kServe},
      {"DELETE", "/v1/completions", Plane::kEngine},
      {"GET", "/tokenize", Plane::kEngine},
      {"PUT", "/health", Plane::kEngine},
      {"FOO", "/v1/models", Plane::kEngine},
  };
  for (const auto& [method, path, plane] : cases) {
    const std::string key = plane == Plane::kEngine ? "" : path.starts_with("/admin") ? c.admin_key : c.user_key;
    rows.push_back({fmt::format("{} {}{}", method, path, plane == Plane::kEngine ? " (engine)" : ""), plane,
                    Http(method, path, key, method == "POST" || method == "PUT" ? "{}" : ""), 405});
  }
  rows.push_back({"CONNECT in authority form", Plane::kServe,
                  "CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n", 400});
  rows.push_back({"OPTIONS *", Plane::kServe, "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400});
}

// The HTTP layer itself: framing, bad header bytes, floods, sizes, Content-Type, slowness.
void AddHttpRows(const Context& c, std::vector<Row>& rows) {
  const std::string admin_auth = "Authorization: Bearer " + c.admin_key + "\r\n";
  const std::string user_auth = "Authorization: Bearer " + c.user_key + "\r\n";
  auto raw = [&](std::string name, std::string bytes, int status, Plane plane = Plane::kServe) {
    rows.push_back({std::move(name), plane, std::move(bytes), status});
  };
  raw("a TLS ClientHello", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + std::string(64, 'A'), 400);
  raw("the HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400);
  raw("a request line of garbage", "\x01\x02\x03 \xff\xfe HTTP/1.1\r\n\r\n", 400);
  raw("a space in a header name", "GET /health HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n", 400);
  raw("a NUL in a header value", std::string("GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 43), 400);
  raw("a non-ASCII header name", "GET /health HTTP/1.1\r\nHost: x\r\nX-\xc3\xa9: 1\r\n\r\n", 400);
  raw("a CR inside a header value", "GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400);
  raw("invalid UTF-8 in a header value", "GET /v1/models HTTP/1.1\r\nHost: x\r\nX-A: \xff\xfe\xc0\xaf\r\nConnection: close\r\n\r\n", 401);
  raw("invalid UTF-8 in the target",
      "GET /v1/models/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + user_auth + "\r\n", 404);
  raw("Content-Length -1", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + user_auth + "Content-Length: -1\r\n\r\n", 400);
  raw("Content-Length abc", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + user_auth + "Content-Length: abc\r\n\r\n", 400);
  raw("two different Content-Lengths",
      "POST /admin/v1/models HTTP/1.1\r\nHost: x\r\n" + admin_auth +
          "Content-Length: 2\r\nContent-Length: 20\r\n\r\n{}", 400);
  raw("Content-Length 2^67", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + user_auth +
                                 "Content-Length: 147573952589676412928\r\n\r\n", 400);
  raw("Content-Length and chunked together",
      "POST /admin/v1/models HTTP/1.1\r\nHost: x\r\n" + admin_auth +
          "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400);
  raw("a chunk size of garbage",
      "POST /admin/v1/models HTTP/1.1\r\nHost: x\r\n" + admin_auth + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400);
  raw("a chunk size of 2^72",
      "POST /admin/v1/models HTTP/1.1\r\nHost: x\r\n" + admin_auth +
          "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n", 400);
  raw("Content-Length just over the limit",
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + user_auth +
          fmt::format("Content-Length: {}\r\n\r\n", kBodyLimit + 1), 413);
  raw("Expect: 100-continue over the limit",
      "PUT /admin/v1/config/sweep.key HTTP/1.1\r\nHost: x\r\n" + admin_auth +
          fmt::format("Expect: 100-continue\r\nContent-Length: {}\r\n\r\n", kBodyLimit + 1), 413);
  raw("Expect: 100-continue with a bad body",
      "POST /admin/v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + admin_auth +
          "Expect: 100-continue\r\nContent-Length: 1\r\n\r\n{", 400);
  {
    // limit + 1 bytes in chunks of 1 MB: refused once the count passes the limit.
    std::string chunked = "POST /admin/v1/usage HTTP/1.1\r\nHost: x\r\n" + admin_auth + "Transfer-Encoding: chunked\r\n\r\n";
    size_t left = kBodyLimit + 1;
    while (left > 0) {
      const size_t n = std::min<size_t>(left, 1'000'000);
      chunked += fmt::format("{:x}\r\n", n) + std::string(n, ' ') + "\r\n";
      left -= n;
    }
    raw("a chunked body just over the limit", chunked + "0\r\n\r\n", 413);
  }
  // 10 MB bodies, under the limit: refused for what they are.
  raw("10 MB unterminated string (gateway)",
      Http("POST", "/v1/chat/completions", c.user_key, R"({"model": "demo", "prompt": ")" + std::string(kTenMegabytes, 'a')), 400);
  raw("10 MB of [ (gateway)", Http("POST", "/v1/completions", c.user_key, std::string(kTenMegabytes, '[')), 400);
  raw("10 MB of [ in a field (gateway)",
      Http("POST", "/v1/embeddings", c.user_key, R"({"model": "demo", "input": )" + std::string(kTenMegabytes, '[')), 400);
  raw("10 MB unterminated string (admin)",
      Http("PUT", "/admin/v1/config/sweep.key", c.admin_key, R"({"value": ")" + std::string(kTenMegabytes, 'a')), 400);
  raw("10 MB of [ (admin)", Http("POST", "/admin/v1/usage", c.admin_key, std::string(kTenMegabytes, '[')), 400);
  raw("10 MB of { (admin)", Http("POST", "/admin/v1/keys", c.admin_key, Repeat(R"({"a":)", kTenMegabytes / 5)), 400);
  raw("10 MB of [ (engine)", Http("POST", "/v1/completions", "", std::string(kTenMegabytes, '[')), 400, Plane::kEngine);
  raw("10 MB of [ (engine tokenize)",
      Http("POST", "/tokenize", "", R"({"prompt": )" + std::string(kTenMegabytes, '[')), 400, Plane::kEngine);
  // Header floods: too many bytes of headers is 431; many small ones are fine.
  {
    std::string flood;
    for (int i = 0; i < 1000; ++i) flood += fmt::format("X-Flood-{}: {}\r\n", i, std::string(64, 'f'));
    raw("1,000 headers of 80 bytes", Http("GET", "/v1/models", c.user_key, "", flood), 431);
    raw("1,000 headers of 80 bytes (admin)", Http("POST", "/admin/v1/models", c.admin_key, "{}", flood), 431);
    raw("1,000 headers of 80 bytes (engine)", Http("GET", "/v1/models", "", "", flood), 431, Plane::kEngine);
    std::string small;
    for (int i = 0; i < 1000; ++i) small += fmt::format("X-F{}: v\r\n", i);
    raw("1,000 small headers and no key", Http("POST", "/v1/chat/completions", "", "{}", small), 401);
    raw("1,000 small headers and a bad body", Http("POST", "/admin/v1/teams", c.admin_key, "[", small), 400);
  }
  raw("a 100 KB header", Http("GET", "/v1/models", c.user_key, "", "X-Big: " + std::string(100'000, 'b') + "\r\n"), 431);
  raw("a 100 KB Authorization header", Http("GET", "/admin/v1/keys", std::string(100'000, 'k')), 431);
  raw("a 100 KB target", Http("GET", "/v1/models/" + std::string(100'000, 'm'), c.user_key), 431);
  raw("a 100 KB header (engine)", Http("GET", "/health", "", "", "X-Big: " + std::string(100'000, 'b') + "\r\n"), 431,
      Plane::kEngine);
  // Content types: the body is JSON whatever the header says (curl -d sends a form type),
  // so a body in another format is refused for its content.
  const std::pair<std::string, std::string> typed_bodies[] = {
      {"application/x-www-form-urlencoded", "model=demo&prompt=hi"},
      {"multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ndemo\r\n--b--\r\n"},
      {"application/xml", "<request><model>demo</model></request>"},
      {"text/plain", "hello"},
      {"application/json; charset=utf-16", std::string("{\0\"\0m\0\"\0:\0 \0\"\0d\0\"\0}\0", 20)},
      {"\xff\xfe/\xc3\x28", "\xff"},
      {"application/json\r\nX-Injected: 1", "{"},
  };
  for (const auto& [type, body] : typed_bodies) {
    raw("Content-Type " + type.substr(0, 40) + " (gateway)",
        Http("POST", "/v1/completions", c.user_key, body, "", type), 400);
    raw("Content-Type " + type.substr(0, 40) + " (admin)", Http("POST", "/admin/v1/models", c.admin_key, body, "", type),
        400);
  }
  raw("Content-Encoding gzip with a body that is not",
      Http("POST", "/v1/completions", c.user_key, "\x1f\x8b\x08\x00garbage", "Content-Encoding: gzip\r\n"), 400);
  // Slow clients: closed without an answer once the header (or body) timeout passes.
  rows.push_back({"headers one byte per 50 ms", Plane::kServe,
                  "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(600, 's') + "\r\n\r\n", 0,
                  false, false, /*slow=*/true});
  rows.push_back({"a body one byte per 50 ms", Plane::kServe,
                  "POST /admin/v1/models HTTP/1.1\r\nHost: x\r\n" + admin_auth + "Content-Length: 600\r\n\r\n" +
                      std::string(600, ' '),
                  0, false, false, /*slow=*/true});
  rows.push_back({"a connection that sends nothing", Plane::kServe, "", 0, false, false, /*slow=*/true});
}

std::string ExpectedType(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 409: return "conflict_error";
    default: return "invalid_request_error";
  }
}

// What must not change: the store's objects (times of instances aside, which the
// reconciler refreshes), the config, the audit chain's length, the pulls.
json StoreState(testing::ServeProcess& serve) {
  auto get = [&](const std::string& path) {
    common::HttpResponse response = serve.Call(HttpMethod::kGet, path);
    EXPECT_EQ(response.status, 200) << path << ": " << response.body;
    return json::parse(response.body, nullptr, false);
  };
  json state;
  state["models"] = get("/admin/v1/models");
  json deployments = get("/admin/v1/deployments")["data"];
  for (json& d : deployments) {
    d.erase("status");
    d.erase("updated_at");
    json instances = json::array();
    for (const json& i : d["instances"]) instances.push_back({i["id"], i["pid"], i["version"], i["port"]});
    d["instances"] = instances;
  }
  state["deployments"] = deployments;  // their instances: no engine started or restarted
  json instances = json::array();
  const json listed = get("/admin/v1/instances");
  for (const json& i : listed["data"]) {
    instances.push_back({i["id"], i["pid"], i["version"], i["port"], i["restarts"]});
  }
  state["instances"] = instances;
  state["keys"] = get("/admin/v1/keys");
  state["teams"] = get("/admin/v1/teams");
  state["config"] = get("/admin/v1/config");
  state["backends"] = get("/admin/v1/backends");
  state["pulls"] = get("/admin/v1/pulls");
  const json audit = get("/admin/v1/audit/verify");
  state["audit_rows"] = audit["rows_checked"];
  state["audit_ok"] = audit["ok"];
  return state;
}

// The usage ledger's rows after `after_id`, in order.
json UsageAfter(testing::ServeProcess& serve, int64_t after_id) {
  common::HttpResponse response =
      serve.Call(HttpMethod::kGet, fmt::format("/admin/v1/usage/records?after_id={}&limit=100000", after_id));
  EXPECT_EQ(response.status, 200) << response.body;
  json body = json::parse(response.body, nullptr, false);
  return body.is_object() ? body["data"] : json::array();
}

// Sends a good chat with x-request-id `marker` until it is answered, then waits until its
// usage row is in the ledger (rows are written in order: every earlier row is there too).
// Returns the ledger's last row id, or -1 with a test failure.
int64_t LedgerBarrier(testing::ServeProcess& serve, const std::string& user_key, const std::string& marker) {
  common::HttpClient client;
  common::HttpClientRequest chat{.method = HttpMethod::kPost, .url = serve.url() + "/v1/chat/completions"};
  chat.headers.Set("authorization", "Bearer " + user_key);
  chat.headers.Set("x-request-id", marker);
  chat.body = json{{"model", "demo"}, {"max_tokens", 1}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}.dump();
  bool answered = false;
  for (int i = 0; i < 600 && !answered; ++i) {
    auto response = client.Send(chat);
    answered = response.ok() && response->status == 200 && response->headers.Get("x-ratelimit-limit-requests");
    if (!answered) std::this_thread::sleep_for(100ms);
  }
  if (!answered) {
    ADD_FAILURE() << "the marker request " << marker << " was not answered";
    return -1;
  }
  for (int i = 0; i < 600; ++i) {
    const json rows = UsageAfter(serve, 0);
    for (const json& row : rows) {
      if (row.value("request_id", "") == marker) return row["id"].get<int64_t>();
    }
    std::this_thread::sleep_for(100ms);
  }
  ADD_FAILURE() << "no usage row for " << marker;
  return -1;
}

bool Healthy(int port) {
  const RawResponse health = RawExchange(port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  return health.status == 200;
}

TEST(HostileInputTest, EveryEndpointRefusesHostileInputWithA4xxAndChangesNothing) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("triplane-hostile-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    auto serve = testing::ServeProcess::Start(
        dir, {"--header-timeout", "2", "--body-timeout", "3", "--max-body-bytes", std::to_string(kBodyLimit)});
    ASSERT_NE(serve, nullptr);
    ASSERT_TRUE(serve->WaitUntilAnswers("demo"));

    // A user key, and a rate limit so that the gateway's token bound runs on every body.
    common::HttpResponse key = serve->Call(HttpMethod::kPost, "/admin/v1/keys", {{"name", "sweep-user"}});
    ASSERT_EQ(key.status, 201) << key.body;
    common::HttpResponse limit = serve->Call(HttpMethod::kPut, "/admin/v1/config/limits.default",
                                             {{"value", {{"requests_per_minute", 1'000'000}}}});
    ASSERT_EQ(limit.status, 200) << limit.body;

    Context c{.admin_key = serve->admin_key(),
              .user_key = json::parse(key.body)["key"].get<std::string>(),
              .serve_port = std::stoi(serve->url().substr(serve->url().rfind(':') + 1)),
              .data_dir = (dir / "data").string()};
    const json instances = json::parse(serve->Call(HttpMethod::kGet, "/admin/v1/instances").body);
    ASSERT_EQ(instances["data"].size(), 1u) << instances.dump();
    c.engine_port = instances["data"][0]["port"].get<int>();

    const int64_t ledger_before = LedgerBarrier(*serve, c.user_key, "sweep-before");
    ASSERT_GE(ledger_before, 0);
    const json before = StoreState(*serve);
    ASSERT_EQ(before["instances"].size(), 1u) << before.dump();

    std::vector<Row> rows;
    AddBadJsonRows(c, rows);
    AddGenerationRows(c, rows);
    AddAdminFieldRows(c, rows);
    AddAuthRows(c, rows);
    AddPathRows(c, rows);
    AddMethodRows(c, rows);
    AddHttpRows(c, rows);
    EXPECT_GE(rows.size(), 200u);
    std::printf("hostile input sweep: %zu requests\n", rows.size());

    int forwarded = 0;
    for (const Row& row : rows) {
      SCOPED_TRACE(row.name);
      const int port = row.plane == Plane::kServe ? c.serve_port : c.engine_port;
      if (row.slow) {
        EXPECT_TRUE(ClosedOnSlowClient(port, row.request));
      } else {
        const RawResponse response = RawExchange(port, row.request);
        EXPECT_EQ(response.status, row.status) << response.head << "\n" << response.body.substr(0, 500);
        if (row.json_error && response.status >= 400) {
          EXPECT_NE(common::AsciiToLower(response.head).find("content-type: application/json"), std::string::npos)
              << response.head;
          const json error = json::parse(response.body, nullptr, false);
          ASSERT_TRUE(error.is_object() && error.contains("error") && error["error"].is_object()) << response.body;
          EXPECT_TRUE(error["error"]["message"].is_string()) << response.body;
          EXPECT_EQ(error["error"].value("type", ""), ExpectedType(response.status)) << response.body;
          // No secret comes back in an error.
          EXPECT_EQ(response.body.find(c.admin_key), std::string::npos);
          EXPECT_EQ(response.body.find(c.user_key), std::string::npos);
        }
      }
      if (row.forwarded) ++forwarded;
      ASSERT_TRUE(Healthy(c.serve_port)) << "serve stopped answering /health: " << serve->log().substr(0, 4000);
      if (row.plane == Plane::kEngine) {
        ASSERT_TRUE(Healthy(c.engine_port)) << "the engine stopped answering /health";
      }
    }

    // The store is as it was; the only ledger rows are the refusals that reached the engine.
    const int64_t ledger_after = LedgerBarrier(*serve, c.user_key, "sweep-after");
    EXPECT_EQ(StoreState(*serve), before);
    const json usage = UsageAfter(*serve, ledger_before);
    ASSERT_FALSE(usage.empty());
    EXPECT_EQ(usage.back()["request_id"], "sweep-after");
    EXPECT_EQ(static_cast<int>(usage.size()) - 1, forwarded);
    for (size_t i = 0; i + 1 < usage.size(); ++i) {
      EXPECT_EQ(usage[i]["status"], 400) << usage[i].dump();
      EXPECT_EQ(usage[i]["completion_tokens"], 0) << usage[i].dump();
    }
    EXPECT_GT(ledger_after, ledger_before);
  }
  std::filesystem::remove_all(dir);
}

// Config values are free-form JSON: a price that is not a number counts as 0. (It used
// to throw after the answer was sent, and the request's usage row was lost.)
TEST(HostileInputTest, APriceThatIsNotANumberCountsAsZero) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("triplane-hostile-price-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    auto serve = testing::ServeProcess::Start(dir);
    ASSERT_NE(serve, nullptr);
    ASSERT_TRUE(serve->WaitUntilAnswers("demo"));
    common::HttpResponse price = serve->Call(
        HttpMethod::kPut, "/admin/v1/config/prices.demo",
        {{"value", {{"prompt_per_million", 1000}, {"completion_per_million", "free"}}}});
    ASSERT_EQ(price.status, 200) << price.body;
    const int port = std::stoi(serve->url().substr(serve->url().rfind(':') + 1));
    const json chat = {{"model", "demo"}, {"max_tokens", 1}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    // Until the gateway charges with the new price: the number part shows that it does.
    json charged;
    for (int i = 0; i < 300 && charged.is_null(); ++i) {
      ASSERT_EQ(serve->Call(HttpMethod::kPost, "/v1/chat/completions", chat).status, 200) << serve->log();
      const json rows = UsageAfter(*serve, 0);
      for (const json& row : rows) {
        if (row.value("cost_micros", 0) > 0) charged = row;
      }
      if (charged.is_null()) std::this_thread::sleep_for(100ms);
    }
    ASSERT_FALSE(charged.is_null()) << "no request was charged with the price";
    EXPECT_EQ(charged["status"], 200);
    EXPECT_EQ(charged["cost_micros"], charged["prompt_tokens"].get<int64_t>() * 1000);
    EXPECT_TRUE(Healthy(port));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace triplane
