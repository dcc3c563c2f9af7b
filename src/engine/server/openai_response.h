#pragma once

// The response side of the engine's OpenAI-compatible API: the JSON of completions and
// chat completions (whole responses and streamed chunks), usage and logprobs, shaped
// exactly as OpenAI's API returns them.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/server/choice_decoder.h"
#include "engine/server/openai_protocol.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace triplane::engine::server {

// What every response and chunk of one request shares.
struct ResponseContext {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string id;         // "cmpl-…" / "chatcmpl-…", the same in every chunk
  int64_t created = 0;    // Unix seconds
  std::string model;      // the served model name
  int top_logprobs = -1;  // -1: no logprobs
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
};

// One finished choice of a non-streamed response.
struct ChoiceResult {
  std::string text;
  std::vector<TokenLogprob> logprobs;
  ChoiceFinish finish = ChoiceFinish::kNone;
};

// A new response id: `prefix` ("cmpl-", "chatcmpl-", "embd-") and 24 random hex digits.
// Thread-safe.
std::string NewResponseId(std::string_view prefix);

// {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details":
// {"cached_tokens"}}.
nlohmann::json UsageJson(const Usage& usage);

// Logprobs of `entries`: completions {"tokens", "token_logprobs", "top_logprobs",
// "text_offset"}; chat {"content": [{"token", "logprob", "bytes", "top_logprobs"}],
// "refusal": null}. Token texts are the tokens' pieces (invalid UTF-8 is replaced when
// serialised). Non-finite logprobs become -9999.0, as in OpenAI's API.
nlohmann::json LogprobsJson(const ResponseContext& context, std::span<const TokenLogprob> entries,
                            const Tokenizer& tokenizer);

// One streamed chunk for choice `index`: completions {"text"}, chat {"delta": {"content"}}
// (plus "role": "assistant" when `first`). `finish` kNone sends finish_reason null.
// `logprobs` is null or LogprobsJson(). With include_usage every chunk carries
// "usage": null.
nlohmann::json StreamChunk(const ResponseContext& context, int index, std::string_view text,
                           bool first, nlohmann::json logprobs, ChoiceFinish finish,
                           bool include_usage);

// The last chunk when stream_options.include_usage: no choices, the usage.
nlohmann::json UsageChunk(const ResponseContext& context, const Usage& usage);

// A whole non-streamed response: "text_completion" or "chat.completion".
nlohmann::json CompletionResponse(const ResponseContext& context,
                                  std::span<const ChoiceResult> choices, const Usage& usage,
                                  const Tokenizer& tokenizer);

}  // namespace triplane::engine::server
