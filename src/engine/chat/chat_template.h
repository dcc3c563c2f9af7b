#pragma once

// Chat templates: the Jinja template in a model's `tokenizer.chat_template` that turns
// OpenAI-style messages into the prompt text, rendered as Hugging Face's
// apply_chat_template does (jinja2 with trim_blocks and lstrip_blocks, the immutable
// sandbox, tojson as json.dumps(ensure_ascii=False), raise_exception(), strftime_now()).
//
// Example:
//   TP_ASSIGN_OR_RETURN(ChatTemplate tmpl, ChatTemplate::Create(source, "<s>", "</s>"));
//   TP_ASSIGN_OR_RETURN(std::string prompt, tmpl.Render(messages, {.add_generation_prompt = true}));
//
// Supported Jinja: see docs/architecture.md "Chat templates". Limits per render (a
// template that reaches one fails with InvalidArgument, never crashes or hangs):
//   * 8 MiB of output, and of any string, captured block or macro result;
//   * 20 million evaluation steps (expressions, statements, loop iterations);
//   * 256 MiB of strings and container slots created;
//   * 2^27 node visits by deep operations (str()/tojson of containers, ==, in);
//   * 32 nested macro calls, 600 nested evaluations, values nested 200 deep;
//   * templates nested 128 deep (expressions or blocks), range() of 2^20 items.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace triplane::engine::chat {

namespace jinja {
struct Template;
}  // namespace jinja

struct ChatTemplateOptions {
  // Ask the template to open an assistant turn at the end.
  bool add_generation_prompt = true;
  // More top-level variables (an object), e.g. {"tools": [...], "enable_thinking": false}.
  // They override the defaults (tools and documents are none, as in Hugging Face).
  nlohmann::json extra_context = nlohmann::json::object();
  // The time strftime_now() formats, in UTC; unset = the time of the call.
  std::optional<std::chrono::system_clock::time_point> now;
};

// A parsed chat template. Immutable: copies share the parsed tree, and Render may run on
// many threads at once.
class ChatTemplate {
 public:
  // Parses `source` once. InvalidArgument with "line L, column C" for a syntax error,
  // an unknown tag, filter or test, or source that is not UTF-8. Cost: linear in the
  // source.
  [[nodiscard]] static absl::StatusOr<ChatTemplate> Create(std::string_view source,
                                                           std::string bos_token,
                                                           std::string eos_token);

  // Renders `messages` (an array of {role, content, ...} objects; content a string, null
  // or an array of parts, passed through as given) with the variables messages,
  // add_generation_prompt, bos_token, eos_token, tools (none), documents (none) and
  // `options.extra_context`. InvalidArgument for a non-array `messages`, a
  // non-object extra_context, a template error (with its position), a
  // raise_exception() call (with its message) or a limit reached. Thread-safe.
  [[nodiscard]] absl::StatusOr<std::string> Render(const nlohmann::json& messages,
                                                   const ChatTemplateOptions& options) const;

  // The ChatML template used when a model has none: <|im_start|>role\ncontent<|im_end|>\n
  // per message (text parts of array content joined), then <|im_start|>assistant\n.
  static std::string_view ChatMlSource();

  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }

 private:
  ChatTemplate(std::shared_ptr<const jinja::Template> tmpl, std::string bos_token, std::string eos_token);

  std::shared_ptr<const jinja::Template> template_;
  std::string bos_token_;
  std::string eos_token_;
};

}  // namespace triplane::engine::chat
