#include "engine/server/openai_response.h"

#include <cmath>
#include <random>

#include "fmt/format.h"

namespace triplane::engine::server {
namespace {

using nlohmann::json;

double FiniteLogprob(float logprob) {
  return std::isfinite(logprob) ? static_cast<double>(logprob) : -9999.0;
}

json Bytes(std::string_view piece) {
  json bytes = json::array();
  for (char c : piece) bytes.push_back(static_cast<int>(static_cast<unsigned char>(c)));
  return bytes;
}

std::string_view ObjectName(Endpoint endpoint, bool chunk) {
  if (endpoint == Endpoint::kCompletions) return "text_completion";
  return chunk ? "chat.completion.chunk" : "chat.completion";
}

json Envelope(const ResponseContext& context, bool chunk) {
  return {{"id", context.id},
          {"object", ObjectName(context.endpoint, chunk)},
          {"created", context.created},
          {"model", context.model},
          {"system_fingerprint", nullptr}};
}

json FinishJson(ChoiceFinish finish) {
  if (finish == ChoiceFinish::kNone) return nullptr;
  return FinishReasonName(finish);
}

}  // namespace

std::string NewResponseId(std::string_view prefix) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  const uint64_t high = rng();
  const uint64_t low = rng();
  return fmt::format("{}{:08x}{:016x}", prefix, high & 0xffffffffu, low);
}

json UsageJson(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", usage.cached_tokens}}}};
}

json LogprobsJson(const ResponseContext& context, std::span<const TokenLogprob> entries,
                  const Tokenizer& tokenizer) {
  const size_t k = context.top_logprobs > 0 ? static_cast<size_t>(context.top_logprobs) : 0;
  if (context.endpoint == Endpoint::kCompletions) {
    json tokens = json::array(), token_logprobs = json::array(), top = json::array(),
         offsets = json::array();
    for (const TokenLogprob& entry : entries) {
      tokens.push_back(tokenizer.TokenPiece(entry.token));
      token_logprobs.push_back(FiniteLogprob(entry.logprob));
      json best = json::object();
      for (size_t i = 0; i < entry.top.size() && i < k; ++i) {
        best[std::string(tokenizer.TokenPiece(entry.top[i].first))] =
            FiniteLogprob(entry.top[i].second);
      }
      top.push_back(std::move(best));
      offsets.push_back(entry.text_offset);
    }
    return {{"tokens", std::move(tokens)},
            {"token_logprobs", std::move(token_logprobs)},
            {"top_logprobs", std::move(top)},
            {"text_offset", std::move(offsets)}};
  }
  json content = json::array();
  for (const TokenLogprob& entry : entries) {
    const std::string_view piece = tokenizer.TokenPiece(entry.token);
    json best = json::array();
    for (size_t i = 0; i < entry.top.size() && i < k; ++i) {
      const std::string_view top_piece = tokenizer.TokenPiece(entry.top[i].first);
      best.push_back({{"token", top_piece},
                      {"logprob", FiniteLogprob(entry.top[i].second)},
                      {"bytes", Bytes(top_piece)}});
    }
    content.push_back({{"token", piece},
                       {"logprob", FiniteLogprob(entry.logprob)},
                       {"bytes", Bytes(piece)},
                       {"top_logprobs", std::move(best)}});
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

json StreamChunk(const ResponseContext& context, int index, std::string_view text, bool first,
                 json logprobs, ChoiceFinish finish, bool include_usage) {
  json chunk = Envelope(context, /*chunk=*/true);
  json choice = {{"index", index}};
  if (context.endpoint == Endpoint::kCompletions) {
    choice["text"] = text;
  } else {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (first || !text.empty()) delta["content"] = text;
    choice["delta"] = std::move(delta);
  }
  choice["logprobs"] = std::move(logprobs);
  choice["finish_reason"] = FinishJson(finish);
  chunk["choices"] = json::array({std::move(choice)});
  if (include_usage) chunk["usage"] = nullptr;
  return chunk;
}

json UsageChunk(const ResponseContext& context, const Usage& usage) {
  json chunk = Envelope(context, /*chunk=*/true);
  chunk["choices"] = json::array();
  chunk["usage"] = UsageJson(usage);
  return chunk;
}

json CompletionResponse(const ResponseContext& context, std::span<const ChoiceResult> choices,
                        const Usage& usage, const Tokenizer& tokenizer) {
  json response = Envelope(context, /*chunk=*/false);
  json list = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& result = choices[i];
    json choice = {{"index", i}};
    if (context.endpoint == Endpoint::kCompletions) {
      choice["text"] = result.text;
    } else {
      choice["message"] = {{"role", "assistant"}, {"content", result.text}, {"refusal", nullptr}};
    }
    choice["logprobs"] =
        context.top_logprobs >= 0 ? LogprobsJson(context, result.logprobs, tokenizer) : json();
    choice["finish_reason"] = FinishJson(result.finish);
    list.push_back(std::move(choice));
  }
  response["choices"] = std::move(list);
  response["usage"] = UsageJson(usage);
  return response;
}

}  // namespace triplane::engine::server
