// Fuzzes ChatTemplate: any template source must either fail Create or render (or fail
// Render) cleanly within the documented limits — no crash, hang, leak or sanitizer
// report. Input: the template, optionally followed by "\n---\n" and a JSON array of
// messages (default: a system and a user message). A render must be deterministic.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/json.h"
#include "engine/chat/chat_template.h"

namespace triplane::engine::chat {
namespace {

constexpr std::string_view kSeparator = "\n---\n";
constexpr size_t kMaxOutputBytes = size_t{8} << 20;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "chat_template_fuzz: %s\n", what);
  std::abort();
}

nlohmann::json DefaultMessages() {
  return nlohmann::json::array({
      {{"role", "system"}, {"content", "You are helpful."}},
      {{"role", "user"}, {"content", "什么是量子计算? 🤔"}},
  });
}

}  // namespace
}  // namespace triplane::engine::chat

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace triplane::engine::chat;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view source = input;
  nlohmann::json messages = DefaultMessages();
  if (const size_t split = input.find(kSeparator); split != std::string_view::npos) {
    source = input.substr(0, split);
    absl::StatusOr<nlohmann::json> parsed = triplane::common::ParseJson(input.substr(split + kSeparator.size()));
    if (parsed.ok() && parsed->is_array()) messages = *std::move(parsed);
  }
  absl::StatusOr<ChatTemplate> tmpl = ChatTemplate::Create(source, "<s>", "</s>");
  if (!tmpl.ok()) {
    if (tmpl.status().code() != absl::StatusCode::kInvalidArgument) Fail("Create failed with a code other than InvalidArgument");
    return 0;
  }
  const ChatTemplateOptions options{.add_generation_prompt = (size & 1) != 0,
                                    .extra_context = {{"enable_thinking", false}},
                                    .now = std::chrono::system_clock::from_time_t(1721995200)};
  absl::StatusOr<std::string> first = tmpl->Render(messages, options);
  if (!first.ok()) {
    if (first.status().code() != absl::StatusCode::kInvalidArgument) Fail("Render failed with a code other than InvalidArgument");
    return 0;
  }
  if (first->size() > kMaxOutputBytes) Fail("output over the documented limit");
  absl::StatusOr<std::string> second = tmpl->Render(messages, options);
  if (!second.ok() || *second != *first) Fail("rendering is not deterministic");
  return 0;
}
