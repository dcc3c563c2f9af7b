#pragma once

// The request side of the engine's OpenAI-compatible API: JSON bodies of
// /v1/completions, /v1/chat/completions, /v1/embeddings, /tokenize and /detokenize parsed
// and validated into plain structs, before anything is tokenized. Every problem is an
// InvalidParam status (api_error.h) naming the parameter, so the HTTP layer answers 400
// with OpenAI's error body; nothing here asserts on or throws for user input.
//
// Parameters follow OpenAI's API (and vLLM's extensions top_k, min_p,
// repetition_penalty, ignore_eos, stop_token_ids, add_special_tokens,
// chat_template_kwargs). JSON null means "not given". Unknown fields are ignored;
// known but unsupported features with a non-default value (echo, suffix, best_of > n,
// tools, response_format other than text, image or audio content) are 400s.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/sampling/sampler.h"
#include "nlohmann/json.hpp"

namespace triplane::engine::server {

enum class Endpoint { kCompletions, kChatCompletions };

// Bounds the parser enforces (besides the fixed ranges of each parameter).
struct ProtocolLimits {
  int64_t vocab_size = 0;     // token ids (prompt, logit_bias, stop_token_ids) are below it
  int max_n = 16;             // choices per prompt
  int max_choices = 64;       // prompts × n in one request
  int max_prompts = 64;       // batch entries (completion prompts, embedding inputs)
  int max_top_logprobs = 20;  // completions `logprobs`, chat `top_logprobs`
  int max_stop_strings = 4;
  size_t max_stop_bytes = 512;  // length of one stop string
};

// One prompt as the client gave it: text to tokenize, or token ids.
struct PromptInput {
  bool is_tokens = false;
  std::string text;
  std::vector<int32_t> tokens;
};

// Parameters of a generation, shared by both endpoints.
struct GenerationParams {
  std::string model;  // as requested; "" when not given
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  std::optional<int64_t> max_tokens;  // max_completion_tokens, else max_tokens; unset = default
  SamplingParams sampling;            // seed only meaningful when seed_given
  bool seed_given = false;
  std::vector<std::string> stop;  // non-empty strings, at most max_stop_strings
  std::vector<int32_t> stop_token_ids;
  int n = 1;
  int top_logprobs = -1;  // -1: no logprobs; else the k best per token (0..20)
  bool ignore_eos = false;
  std::string user;
};

// A parsed /v1/completions or /v1/chat/completions body.
struct CompletionRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  GenerationParams params;
  std::vector<PromptInput> prompts;  // completions: one or more (a batch)
  // Chat: the messages, each an object with a string `role` and `content` a string or
  // null (arrays of text parts are joined with "\n"); other fields pass through to the
  // template.
  nlohmann::json messages = nlohmann::json::array();
  nlohmann::json chat_template_kwargs = nlohmann::json::object();
  bool add_generation_prompt = true;  // chat
  bool add_special_tokens = true;     // default: true for completions, false for chat
};

// A parsed /v1/embeddings body.
struct EmbeddingRequest {
  std::string model;
  std::vector<PromptInput> inputs;  // at least one
  bool base64 = false;              // encoding_format "base64": little-endian float32
  std::optional<int64_t> dimensions;
};

// A parsed /tokenize body: `prompt` text, or chat `messages` rendered by the template.
struct TokenizeRequest {
  bool has_messages = false;
  std::string prompt;
  nlohmann::json messages = nlohmann::json::array();
  nlohmann::json chat_template_kwargs = nlohmann::json::object();
  bool add_special_tokens = true;  // default: true for a prompt, false for messages
  bool add_generation_prompt = true;
};

// A parsed /detokenize body.
struct DetokenizeRequest {
  std::vector<int32_t> tokens;
};

// The body as a JSON object: InvalidParam (param "") for malformed JSON, nesting deeper
// than common::kDefaultMaxJsonDepth, or a non-object.
[[nodiscard]] absl::StatusOr<nlohmann::json> ParseRequestBody(std::string_view body);

[[nodiscard]] absl::StatusOr<CompletionRequest> ParseCompletionRequest(
    const nlohmann::json& body, Endpoint endpoint, const ProtocolLimits& limits);
[[nodiscard]] absl::StatusOr<EmbeddingRequest> ParseEmbeddingRequest(const nlohmann::json& body,
                                                                     const ProtocolLimits& limits);
[[nodiscard]] absl::StatusOr<TokenizeRequest> ParseTokenizeRequest(const nlohmann::json& body);
[[nodiscard]] absl::StatusOr<DetokenizeRequest> ParseDetokenizeRequest(
    const nlohmann::json& body, const ProtocolLimits& limits);

// Validates chat `messages` (a non-empty array of {role: string, content: string | null |
// [text parts]} objects) and returns them with array content joined into a string.
// `param` names the parameter in errors ("messages").
[[nodiscard]] absl::StatusOr<nlohmann::json> NormalizeMessages(const nlohmann::json& messages,
                                                               std::string_view param);

}  // namespace triplane::engine::server
