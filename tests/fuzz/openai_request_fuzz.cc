// Fuzzes the OpenAI request parsers on any bytes: the engine's ParseRequestBody and, for
// each endpoint, ParseCompletionRequest (and the embeddings, tokenize and detokenize
// parsers), under tight and default ProtocolLimits; and the gateway's TokenUpperBound
// on every object that parses. Nothing may throw, crash or trip a sanitizer; errors must
// be 400s naming an OpenAI error code; accepted requests must respect the limits; the
// token bound must be non-negative and cover what it promises.
// Input: one byte choosing the limits, then the body.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/server/api_error.h"
#include "engine/server/openai_protocol.h"
#include "gateway/token_bound.h"
#include "fuzz_check.h"

namespace triplane::engine::server {
namespace {

constexpr size_t kMaxInput = 64 << 10;

using fuzz::Fail;

void CheckError(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kInvalidArgument) Fail("an error other than InvalidArgument");
  if (status.message().empty()) Fail("an error without a message");
  if (ErrorHttpStatus(status) != 400) Fail("an invalid request is not a 400");
  if (ErrorCode(status).empty()) Fail("an invalid request without an error code");
  if (ErrorResponse(status).status != 400) Fail("the error response is not a 400");
}

bool TokensInRange(const std::vector<int32_t>& tokens, const ProtocolLimits& limits) {
  for (int32_t id : tokens) {
    if (id < 0 || id >= limits.vocab_size) return false;
  }
  return true;
}

void CheckCompletion(const CompletionRequest& r, const ProtocolLimits& limits) {
  const GenerationParams& p = r.params;
  if (p.n < 1 || p.n > limits.max_n) Fail("n outside [1, max_n]");
  const int64_t prompts = r.endpoint == Endpoint::kCompletions ? static_cast<int64_t>(r.prompts.size()) : 1;
  if (prompts < 1 || prompts > limits.max_prompts) Fail("prompt count outside [1, max_prompts]");
  if (prompts * p.n > limits.max_choices) Fail("choices over max_choices");
  if (p.top_logprobs < -1 || p.top_logprobs > limits.max_top_logprobs) Fail("top_logprobs out of range");
  if (p.stop.size() > static_cast<size_t>(limits.max_stop_strings)) Fail("too many stop strings");
  for (const std::string& stop : p.stop) {
    if (stop.empty() || stop.size() > limits.max_stop_bytes) Fail("a stop string of a bad length");
  }
  if (!TokensInRange(p.stop_token_ids, limits)) Fail("a stop token id out of range");
  if (p.max_tokens && *p.max_tokens < 0) Fail("negative max_tokens");
  for (const PromptInput& prompt : r.prompts) {
    if (prompt.is_tokens && !TokensInRange(prompt.tokens, limits)) Fail("a prompt token id out of range");
  }
  for (const auto& [id, bias] : p.sampling.logit_bias) {
    if (id < 0 || id >= limits.vocab_size) Fail("a logit_bias id out of range");
  }
  if (r.endpoint == Endpoint::kChatCompletions) {
    if (!r.messages.is_array() || r.messages.empty()) Fail("chat without messages");
    for (const nlohmann::json& m : r.messages) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) Fail("a message without a role");
      if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null()) {
        Fail("message content not normalized to a string");
      }
    }
    if (!r.chat_template_kwargs.is_object()) Fail("chat_template_kwargs not an object");
  }
}

template <typename T>
void Check(const absl::StatusOr<T>& result) {
  if (!result.ok()) CheckError(result.status());
}

void CheckTokenBound(const nlohmann::json& body, const absl::StatusOr<CompletionRequest>& parsed,
                     bool chat) {
  nlohmann::json copy = body;
  const int64_t bound = gateway::TokenUpperBound(copy, chat, 4096);
  if (bound < 0) Fail("a negative token bound");
  if (!parsed.ok()) return;
  // A request the engine accepts can generate max_tokens per choice at most.
  const GenerationParams& p = parsed->params;
  const int64_t max_tokens = p.max_tokens.value_or(4096);
  if (p.max_tokens && max_tokens > bound / std::max(1, p.n)) {
    Fail("the token bound is below max_tokens × n");
  }
  if (!p.max_tokens && copy.value("max_tokens", int64_t{0}) != 4096) {
    Fail("the default max_tokens is not put in the forwarded body");
  }
}

}  // namespace
}  // namespace triplane::engine::server

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace triplane::engine::server;
  if (size < 1 || size > kMaxInput) return 0;
  ProtocolLimits limits{.vocab_size = 300};
  if (data[0] & 1) {
    limits = {.vocab_size = 1 + data[0] / 4, .max_n = 2, .max_choices = 3, .max_prompts = 2,
              .max_top_logprobs = 1, .max_stop_strings = 1, .max_stop_bytes = 3};
  }
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  absl::StatusOr<nlohmann::json> body = ParseRequestBody(text);
  if (!body.ok()) {
    CheckError(body.status());
    return 0;
  }
  if (!body->is_object()) Fail("ParseRequestBody returned a non-object");
  for (Endpoint endpoint : {Endpoint::kCompletions, Endpoint::kChatCompletions}) {
    absl::StatusOr<CompletionRequest> request = ParseCompletionRequest(*body, endpoint, limits);
    Check(request);
    if (request.ok()) CheckCompletion(*request, limits);
    CheckTokenBound(*body, request, endpoint == Endpoint::kChatCompletions);
  }
  Check(ParseEmbeddingRequest(*body, limits));
  Check(ParseTokenizeRequest(*body));
  absl::StatusOr<DetokenizeRequest> detokenize = ParseDetokenizeRequest(*body, limits);
  Check(detokenize);
  if (detokenize.ok() && !TokensInRange(detokenize->tokens, limits)) Fail("a detokenize id out of range");
  nlohmann::json embeddings = *body;
  if (triplane::gateway::TokenUpperBound(embeddings, false, 0) < 0) Fail("a negative token bound");
  return 0;
}
