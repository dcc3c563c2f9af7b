#include "gateway/token_bound.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>

namespace triplane::gateway {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

int64_t SaturatingAdd(int64_t a, int64_t b) { return a > kMax - b ? kMax : a + b; }  // a, b >= 0

int64_t SaturatingMul(int64_t a, int64_t b) {  // a, b >= 0
  return a != 0 && b > kMax / a ? kMax : a * b;
}

// A non-negative integer member, clamped to int64; nullopt when absent or not an integer
// (the engine rejects such requests: they never use tokens).
std::optional<int64_t> CountMember(const nlohmann::json& body, const char* name) {
  const auto it = body.find(name);
  if (it == body.end() || !it->is_number_integer()) return std::nullopt;
  if (it->is_number_unsigned()) {
    return static_cast<int64_t>(std::min<uint64_t>(it->get<uint64_t>(), kMax));
  }
  return std::max<int64_t>(0, it->get<int64_t>());
}

// Bytes of every string inside `value` (message contents, prompt strings or lists).
int64_t TextBytes(const nlohmann::json& value) {
  if (value.is_string()) return static_cast<int64_t>(value.get_ref<const std::string&>().size());
  int64_t total = 0;
  if (value.is_array() || value.is_object()) {
    for (const nlohmann::json& item : value) total = SaturatingAdd(total, TextBytes(item));
  }
  if (value.is_number_integer()) total = SaturatingAdd(total, 1);  // a token id
  return total;
}

const nlohmann::json& Member(const nlohmann::json& body, const char* name) {
  static const nlohmann::json kNull;
  const auto it = body.find(name);
  return it == body.end() ? kNull : *it;
}

}  // namespace

int64_t TokenUpperBound(nlohmann::json& body, bool chat, int64_t default_max_tokens) {
  if (!body.is_object()) return 0;
  int64_t prompt = 0;
  if (chat) {
    const nlohmann::json& messages = Member(body, "messages");
    const int64_t count = messages.is_array() ? static_cast<int64_t>(messages.size()) : 0;
    prompt = SaturatingAdd(TextBytes(messages), SaturatingMul(16, count + 1));
  } else {
    // Tokenizers add a few tokens of their own (BOS, a leading space piece).
    prompt = SaturatingAdd(SaturatingAdd(TextBytes(Member(body, "prompt")), TextBytes(Member(body, "input"))), 8);
  }
  std::optional<int64_t> completion = CountMember(body, "max_completion_tokens");
  if (!completion) completion = CountMember(body, "max_tokens");
  if (!completion) {
    completion = std::max<int64_t>(0, default_max_tokens);
    if (default_max_tokens > 0) body["max_tokens"] = default_max_tokens;
  }
  const int64_t n = std::max<int64_t>(1, CountMember(body, "n").value_or(1));
  return SaturatingAdd(prompt, SaturatingMul(*completion, n));
}

}  // namespace triplane::gateway
