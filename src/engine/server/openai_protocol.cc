#include "engine/server/openai_protocol.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

#include "common/json.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "engine/server/api_error.h"
#include "fmt/format.h"

namespace triplane::engine::server {
namespace {

using nlohmann::json;

// "a string", "an integer", ... as OpenAI's messages put it.
std::string_view TypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a decimal number";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

absl::Status WrongType(std::string_view param, std::string_view expected, const json& got) {
  return InvalidParam(param, "invalid_type",
                      fmt::format("Invalid type for '{}': expected {}, but got {} instead.", param,
                                  expected, TypeName(got)));
}

absl::Status BadValue(std::string_view param, std::string_view why) {
  return InvalidParam(param, "invalid_value", fmt::format("Invalid '{}': {}", param, why));
}

absl::Status Missing(std::string_view param) {
  return InvalidParam(param, "missing_required_parameter",
                      fmt::format("Missing required parameter: '{}'.", param));
}

absl::Status Unsupported(std::string_view param, std::string_view what) {
  return InvalidParam(param, "unsupported_parameter",
                      fmt::format("Unsupported parameter '{}': {}", param, what));
}

// The field `name` of `obj`, or null when absent or null (both mean "not given").
const json* Find(const json& obj, std::string_view name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

bool IsInteger(const json& value) {
  return value.is_number_integer() || value.is_number_unsigned();
}

absl::Status ReadBool(const json& obj, std::string_view name, bool& out) {
  const json* value = Find(obj, name);
  if (value == nullptr) return absl::OkStatus();
  if (!value->is_boolean()) return WrongType(name, "a boolean", *value);
  out = value->get<bool>();
  return absl::OkStatus();
}

absl::Status ReadString(const json& obj, std::string_view name, std::string& out) {
  const json* value = Find(obj, name);
  if (value == nullptr) return absl::OkStatus();
  if (!value->is_string()) return WrongType(name, "a string", *value);
  out = value->get<std::string>();
  return absl::OkStatus();
}

// An integer in [lo, hi] (both inclusive).
absl::StatusOr<std::optional<int64_t>> ReadInt(const json& obj, std::string_view name, int64_t lo,
                                               int64_t hi) {
  const json* value = Find(obj, name);
  if (value == nullptr) return std::optional<int64_t>();
  if (!IsInteger(*value)) return WrongType(name, "an integer", *value);
  if (value->is_number_unsigned() &&
      value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return BadValue(name, fmt::format("expected a value <= {}, but got {} instead.", hi,
                                      value->get<uint64_t>()));
  }
  const int64_t v = value->get<int64_t>();
  if (v < lo)
    return BadValue(name, fmt::format("expected a value >= {}, but got {} instead.", lo, v));
  if (v > hi)
    return BadValue(name, fmt::format("expected a value <= {}, but got {} instead.", hi, v));
  return std::optional<int64_t>(v);
}

struct NumberRange {
  double lo;
  double hi;
  bool lo_open = false;  // (lo, hi] instead of [lo, hi]
};

absl::Status ReadFloat(const json& obj, std::string_view name, NumberRange range, float& out) {
  const json* value = Find(obj, name);
  if (value == nullptr) return absl::OkStatus();
  if (!value->is_number()) return WrongType(name, "a number", *value);
  const double v = value->get<double>();
  const bool below = range.lo_open ? !(v > range.lo) : !(v >= range.lo);
  if (below || !(v <= range.hi)) {
    return BadValue(name, fmt::format("expected a value in {}{}, {}], but got {} instead.",
                                      range.lo_open ? "(" : "[", range.lo, range.hi, v));
  }
  out = static_cast<float>(v);
  return absl::OkStatus();
}

// An array of token ids, each in [0, vocab_size).
absl::StatusOr<std::vector<int32_t>> ReadTokenArray(const json& value, std::string_view param,
                                                    int64_t vocab_size) {
  if (!value.is_array()) return WrongType(param, "an array of integers", value);
  std::vector<int32_t> tokens;
  tokens.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const json& item = value[i];
    const std::string name = fmt::format("{}[{}]", param, i);
    if (!IsInteger(item)) return WrongType(name, "an integer", item);
    const bool negative = item.is_number_integer() && item.get<int64_t>() < 0;
    if (negative || item.get<uint64_t>() >= static_cast<uint64_t>(vocab_size)) {
      return InvalidParam(
          name, "invalid_value",
          fmt::format("Invalid '{}': token id {} is outside the vocabulary (0..{}).", name,
                      item.dump(), vocab_size - 1));
    }
    tokens.push_back(item.get<int32_t>());
  }
  return tokens;
}

// A prompt or embedding input: a string, an array of token ids, or (when `allow_batch`) a
// non-empty array of strings or of token arrays.
absl::StatusOr<std::vector<PromptInput>> ReadPrompts(const json& value, std::string_view param,
                                                     const ProtocolLimits& limits) {
  std::vector<PromptInput> prompts;
  if (value.is_string()) {
    prompts.push_back({.text = value.get<std::string>()});
    return prompts;
  }
  constexpr std::string_view kExpected =
      "a string, an array of strings, an array of integers or an array of arrays of integers";
  if (!value.is_array()) return WrongType(param, kExpected, value);
  if (value.empty()) return BadValue(param, "must not be empty.");
  if (IsInteger(value[0])) {
    TP_ASSIGN_OR_RETURN(std::vector<int32_t> tokens,
                        ReadTokenArray(value, param, limits.vocab_size));
    prompts.push_back({.is_tokens = true, .tokens = std::move(tokens)});
    return prompts;
  }
  if (value.size() > static_cast<size_t>(limits.max_prompts)) {
    return BadValue(param, fmt::format("at most {} entries are allowed, got {}.",
                                       limits.max_prompts, value.size()));
  }
  const bool strings = value[0].is_string();
  for (size_t i = 0; i < value.size(); ++i) {
    const json& item = value[i];
    const std::string name = fmt::format("{}[{}]", param, i);
    if (strings) {
      if (!item.is_string()) return WrongType(name, "a string", item);
      prompts.push_back({.text = item.get<std::string>()});
    } else {
      if (!item.is_array()) return WrongType(name, "an array of integers", item);
      if (item.empty()) return BadValue(name, "must not be empty.");
      TP_ASSIGN_OR_RETURN(std::vector<int32_t> tokens,
                          ReadTokenArray(item, name, limits.vocab_size));
      prompts.push_back({.is_tokens = true, .tokens = std::move(tokens)});
    }
  }
  return prompts;
}

absl::Status ReadStop(const json& obj, const ProtocolLimits& limits,
                      std::vector<std::string>& out) {
  const json* value = Find(obj, "stop");
  if (value == nullptr) return absl::OkStatus();
  auto add = [&](const json& item, const std::string& name) -> absl::Status {
    if (!item.is_string()) return WrongType(name, "a string", item);
    std::string stop = item.get<std::string>();
    if (stop.empty()) return BadValue(name, "a stop string must not be empty.");
    if (stop.size() > limits.max_stop_bytes) {
      return BadValue(
          name, fmt::format("a stop string may hold at most {} bytes.", limits.max_stop_bytes));
    }
    out.push_back(std::move(stop));
    return absl::OkStatus();
  };
  if (value->is_string()) return add(*value, "stop");
  if (!value->is_array()) return WrongType("stop", "a string or an array of strings", *value);
  if (value->size() > static_cast<size_t>(limits.max_stop_strings)) {
    return BadValue("stop", fmt::format("at most {} stop strings are allowed, got {}.",
                                        limits.max_stop_strings, value->size()));
  }
  for (size_t i = 0; i < value->size(); ++i) {
    TP_RETURN_IF_ERROR(add((*value)[i], fmt::format("stop[{}]", i)));
  }
  return absl::OkStatus();
}

absl::Status ReadLogitBias(const json& obj, int64_t vocab_size, SamplingParams& sampling) {
  const json* value = Find(obj, "logit_bias");
  if (value == nullptr) return absl::OkStatus();
  if (!value->is_object()) return WrongType("logit_bias", "an object", *value);
  for (const auto& [key, bias] : value->items()) {
    const std::string name = fmt::format("logit_bias[{}]", key);
    int64_t id = -1;
    bool digits = !key.empty() && key.size() <= 10;
    for (char c : key) digits = digits && c >= '0' && c <= '9';
    if (digits) std::from_chars(key.data(), key.data() + key.size(), id);  // <= 10 digits: fits
    if (id < 0 || id >= vocab_size) {
      return InvalidParam("logit_bias", "invalid_value",
                          fmt::format("Invalid 'logit_bias': key '{}' is not a token id in 0..{}.",
                                      key, vocab_size - 1));
    }
    if (!bias.is_number()) return WrongType(name, "a number", bias);
    const double b = bias.get<double>();
    if (!(b >= -100 && b <= 100)) {
      return BadValue(name, fmt::format("expected a value in [-100, 100], but got {} instead.", b));
    }
    sampling.logit_bias.emplace_back(static_cast<int32_t>(id), static_cast<float>(b));
  }
  return absl::OkStatus();
}

absl::Status RejectUnsupported(const json& body, Endpoint endpoint, int n) {
  if (const json* echo = Find(body, "echo"); echo != nullptr && *echo != false) {
    return Unsupported("echo", "echoing the prompt is not supported.");
  }
  if (const json* suffix = Find(body, "suffix"); suffix != nullptr && *suffix != "") {
    return Unsupported("suffix", "suffixes (insertion) are not supported.");
  }
  if (const json* best_of = Find(body, "best_of");
      best_of != nullptr && !(IsInteger(*best_of) && best_of->get<int64_t>() == n)) {
    return Unsupported("best_of", "best_of is not supported (leave it out or equal to n).");
  }
  for (const char* name : {"tools", "functions"}) {
    if (const json* tools = Find(body, name);
        tools != nullptr && !(tools->is_array() && tools->empty())) {
      return Unsupported(name, "tool calling is not supported yet.");
    }
  }
  for (const char* name : {"tool_choice", "function_call"}) {
    if (const json* choice = Find(body, name);
        choice != nullptr && *choice != "none" && *choice != "auto") {
      return Unsupported(name, "tool calling is not supported yet.");
    }
  }
  if (const json* format = Find(body, "response_format"); format != nullptr) {
    if (!format->is_object()) return WrongType("response_format", "an object", *format);
    if (format->value("type", json("text")) != "text") {
      return Unsupported("response_format", "only {\"type\": \"text\"} is supported yet.");
    }
  }
  if (endpoint == Endpoint::kChatCompletions) {
    if (const json* modalities = Find(body, "modalities");
        modalities != nullptr && *modalities != json::array({"text"})) {
      return Unsupported("modalities", "only text output is supported.");
    }
  }
  return absl::OkStatus();
}

absl::Status ReadGenerationParams(const json& body, Endpoint endpoint, const ProtocolLimits& limits,
                                  GenerationParams& p) {
  TP_RETURN_IF_ERROR(ReadString(body, "model", p.model));
  TP_RETURN_IF_ERROR(ReadBool(body, "stream", p.stream));
  if (const json* options = Find(body, "stream_options")) {
    if (!options->is_object()) return WrongType("stream_options", "an object", *options);
    if (!p.stream) {
      return BadValue("stream_options", "stream_options is only allowed when 'stream' is true.");
    }
    if (const json* usage = Find(*options, "include_usage")) {
      if (!usage->is_boolean())
        return WrongType("stream_options.include_usage", "a boolean", *usage);
      p.include_usage = usage->get<bool>();
    }
  }
  constexpr int64_t kMaxTokensLimit = int64_t{1} << 40;
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> max_tokens,
                      ReadInt(body, "max_tokens", 1, kMaxTokensLimit));
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> max_completion_tokens,
                      ReadInt(body, "max_completion_tokens", 1, kMaxTokensLimit));
  p.max_tokens = max_completion_tokens.has_value() ? max_completion_tokens : max_tokens;

  SamplingParams& s = p.sampling;
  TP_RETURN_IF_ERROR(ReadFloat(body, "temperature", {0, 2}, s.temperature));
  TP_RETURN_IF_ERROR(ReadFloat(body, "top_p", {0, 1, /*lo_open=*/true}, s.top_p));
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> top_k, ReadInt(body, "top_k", -1, limits.vocab_size));
  s.top_k = top_k.has_value() && *top_k > 0 ? static_cast<int>(*top_k) : 0;  // -1 and 0: off
  TP_RETURN_IF_ERROR(ReadFloat(body, "min_p", {0, 1}, s.min_p));
  TP_RETURN_IF_ERROR(ReadFloat(body, "presence_penalty", {-2, 2}, s.presence_penalty));
  TP_RETURN_IF_ERROR(ReadFloat(body, "frequency_penalty", {-2, 2}, s.frequency_penalty));
  TP_RETURN_IF_ERROR(
      ReadFloat(body, "repetition_penalty", {0, 2, /*lo_open=*/true}, s.repetition_penalty));
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> seed,
                      ReadInt(body, "seed", std::numeric_limits<int64_t>::min(),
                              std::numeric_limits<int64_t>::max()));
  if (seed.has_value()) {
    s.seed = static_cast<uint64_t>(*seed);
    p.seed_given = true;
  }
  TP_RETURN_IF_ERROR(ReadLogitBias(body, limits.vocab_size, s));
  TP_RETURN_IF_ERROR(ReadStop(body, limits, p.stop));
  if (const json* ids = Find(body, "stop_token_ids")) {
    TP_ASSIGN_OR_RETURN(p.stop_token_ids,
                        ReadTokenArray(*ids, "stop_token_ids", limits.vocab_size));
  }
  TP_ASSIGN_OR_RETURN(std::optional<int64_t> n, ReadInt(body, "n", 1, limits.max_n));
  p.n = static_cast<int>(n.value_or(1));

  if (endpoint == Endpoint::kCompletions) {
    TP_ASSIGN_OR_RETURN(std::optional<int64_t> logprobs,
                        ReadInt(body, "logprobs", 0, limits.max_top_logprobs));
    p.top_logprobs = logprobs.has_value() ? static_cast<int>(*logprobs) : -1;
  } else {
    bool logprobs = false;
    TP_RETURN_IF_ERROR(ReadBool(body, "logprobs", logprobs));
    TP_ASSIGN_OR_RETURN(std::optional<int64_t> top,
                        ReadInt(body, "top_logprobs", 0, limits.max_top_logprobs));
    if (top.has_value() && !logprobs) {
      return BadValue("top_logprobs", "'logprobs' must be true when 'top_logprobs' is given.");
    }
    p.top_logprobs = logprobs ? static_cast<int>(top.value_or(0)) : -1;
  }
  TP_RETURN_IF_ERROR(ReadBool(body, "ignore_eos", p.ignore_eos));
  TP_RETURN_IF_ERROR(ReadString(body, "user", p.user));
  return RejectUnsupported(body, endpoint, p.n);
}

absl::Status ReadChatTemplateKwargs(const json& body, json& out) {
  if (const json* kwargs = Find(body, "chat_template_kwargs")) {
    if (!kwargs->is_object()) return WrongType("chat_template_kwargs", "an object", *kwargs);
    out = *kwargs;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<json> ParseRequestBody(std::string_view body) {
  absl::StatusOr<json> parsed = common::ParseJson(body);
  if (!parsed.ok()) {
    return InvalidParam("", "invalid_json",
                        fmt::format("The request body is not valid JSON ({}).",
                                    common::ToStd(parsed.status().message())));
  }
  if (!parsed->is_object()) {
    return InvalidParam(
        "", "invalid_type",
        fmt::format("The request body must be a JSON object, but got {}.", TypeName(*parsed)));
  }
  return parsed;
}

absl::StatusOr<json> NormalizeMessages(const json& messages, std::string_view param) {
  if (!messages.is_array()) return WrongType(param, "an array", messages);
  if (messages.empty()) return BadValue(param, "must hold at least one message.");
  json out = json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& message = messages[i];
    const std::string name = fmt::format("{}[{}]", param, i);
    if (!message.is_object()) return WrongType(name, "an object", message);
    const json* role = Find(message, "role");
    if (role == nullptr) return Missing(name + ".role");
    if (!role->is_string()) return WrongType(name + ".role", "a string", *role);
    json normalized = message;
    const json* content = Find(message, "content");
    if (content != nullptr && content->is_array()) {
      std::string text;
      for (size_t j = 0; j < content->size(); ++j) {
        const json& part = (*content)[j];
        const std::string part_name = fmt::format("{}.content[{}]", name, j);
        if (!part.is_object()) return WrongType(part_name, "an object", part);
        const json* type = Find(part, "type");
        if (type == nullptr || *type != "text") {
          return Unsupported(part_name + ".type", "only text content parts are supported.");
        }
        const json* part_text = Find(part, "text");
        if (part_text == nullptr) return Missing(part_name + ".text");
        if (!part_text->is_string()) return WrongType(part_name + ".text", "a string", *part_text);
        if (j > 0) text += '\n';
        text += part_text->get<std::string>();
      }
      normalized["content"] = std::move(text);
    } else if (content != nullptr && !content->is_string()) {
      return WrongType(name + ".content", "a string, an array of content parts or null", *content);
    }
    out.push_back(std::move(normalized));
  }
  return out;
}

absl::StatusOr<CompletionRequest> ParseCompletionRequest(const json& body, Endpoint endpoint,
                                                         const ProtocolLimits& limits) {
  CompletionRequest request;
  request.endpoint = endpoint;
  TP_RETURN_IF_ERROR(ReadGenerationParams(body, endpoint, limits, request.params));
  if (endpoint == Endpoint::kCompletions) {
    const json* prompt = Find(body, "prompt");
    if (prompt == nullptr) return Missing("prompt");
    TP_ASSIGN_OR_RETURN(request.prompts, ReadPrompts(*prompt, "prompt", limits));
    request.add_special_tokens = true;
  } else {
    const json* messages = Find(body, "messages");
    if (messages == nullptr) return Missing("messages");
    TP_ASSIGN_OR_RETURN(request.messages, NormalizeMessages(*messages, "messages"));
    TP_RETURN_IF_ERROR(ReadChatTemplateKwargs(body, request.chat_template_kwargs));
    TP_RETURN_IF_ERROR(ReadBool(body, "add_generation_prompt", request.add_generation_prompt));
    request.add_special_tokens = false;
  }
  TP_RETURN_IF_ERROR(ReadBool(body, "add_special_tokens", request.add_special_tokens));
  const int prompt_count =
      endpoint == Endpoint::kCompletions ? static_cast<int>(request.prompts.size()) : 1;
  if (static_cast<int64_t>(prompt_count) * request.params.n > limits.max_choices) {
    return BadValue("n",
                    fmt::format("{} prompts × n = {} exceeds the limit of {} choices per request.",
                                prompt_count, prompt_count * request.params.n, limits.max_choices));
  }
  return request;
}

absl::StatusOr<EmbeddingRequest> ParseEmbeddingRequest(const json& body,
                                                       const ProtocolLimits& limits) {
  EmbeddingRequest request;
  TP_RETURN_IF_ERROR(ReadString(body, "model", request.model));
  const json* input = Find(body, "input");
  if (input == nullptr) return Missing("input");
  TP_ASSIGN_OR_RETURN(request.inputs, ReadPrompts(*input, "input", limits));
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    if (!request.inputs[i].is_tokens && request.inputs[i].text.empty()) {
      return BadValue(
          request.inputs.size() == 1 ? std::string("input") : fmt::format("input[{}]", i),
          "an input must not be empty.");
    }
  }
  std::string format = "float";
  TP_RETURN_IF_ERROR(ReadString(body, "encoding_format", format));
  if (format != "float" && format != "base64") {
    return BadValue("encoding_format",
                    fmt::format("expected 'float' or 'base64', but got '{}'.", format));
  }
  request.base64 = format == "base64";
  TP_ASSIGN_OR_RETURN(request.dimensions,
                      ReadInt(body, "dimensions", 1, std::numeric_limits<int32_t>::max()));
  return request;
}

absl::StatusOr<TokenizeRequest> ParseTokenizeRequest(const json& body) {
  TokenizeRequest request;
  const json* prompt = Find(body, "prompt");
  const json* messages = Find(body, "messages");
  if ((prompt == nullptr) == (messages == nullptr)) {
    return InvalidParam(prompt == nullptr ? "prompt" : "messages", "invalid_value",
                        "Give exactly one of 'prompt' and 'messages'.");
  }
  if (prompt != nullptr) {
    if (!prompt->is_string()) return WrongType("prompt", "a string", *prompt);
    request.prompt = prompt->get<std::string>();
  } else {
    request.has_messages = true;
    request.add_special_tokens = false;
    TP_ASSIGN_OR_RETURN(request.messages, NormalizeMessages(*messages, "messages"));
    TP_RETURN_IF_ERROR(ReadChatTemplateKwargs(body, request.chat_template_kwargs));
    TP_RETURN_IF_ERROR(ReadBool(body, "add_generation_prompt", request.add_generation_prompt));
  }
  TP_RETURN_IF_ERROR(ReadBool(body, "add_special_tokens", request.add_special_tokens));
  return request;
}

absl::StatusOr<DetokenizeRequest> ParseDetokenizeRequest(const json& body,
                                                         const ProtocolLimits& limits) {
  const json* tokens = Find(body, "tokens");
  if (tokens == nullptr) return Missing("tokens");
  DetokenizeRequest request;
  TP_ASSIGN_OR_RETURN(request.tokens, ReadTokenArray(*tokens, "tokens", limits.vocab_size));
  return request;
}

}  // namespace triplane::engine::server
