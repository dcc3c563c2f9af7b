#include "engine/chat/chat_template.h"

#include <fmt/format.h>

#include <utility>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "engine/chat/jinja_ast.h"
#include "engine/chat/jinja_interpreter.h"
#include "engine/chat/jinja_parser.h"
#include "engine/chat/jinja_value.h"
#include "engine/tokenizer/unicode.h"

namespace triplane::engine::chat {
namespace {

constexpr std::string_view kChatMlSource =
    "{%- for message in messages -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}\n"
    "{%- if message['content'] is string -%}\n"
    "{{- message['content'] -}}\n"
    "{%- elif message['content'] is iterable -%}\n"
    "{%- for part in message['content'] -%}\n"
    "{%- if part is mapping and part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- endif -%}\n"
    "{{- '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n";

}  // namespace

ChatTemplate::ChatTemplate(std::shared_ptr<const jinja::Template> tmpl, std::string bos_token,
                           std::string eos_token)
    : template_(std::move(tmpl)), bos_token_(std::move(bos_token)), eos_token_(std::move(eos_token)) {}

absl::StatusOr<ChatTemplate> ChatTemplate::Create(std::string_view source, std::string bos_token,
                                                  std::string eos_token) {
  if (!IsValidUtf8(source)) return absl::InvalidArgumentError("chat template is not valid UTF-8");
  if (source.size() > (size_t{1} << 30)) return absl::InvalidArgumentError("chat template too large");
  TP_ASSIGN_OR_RETURN(std::unique_ptr<const jinja::Template> tmpl, jinja::ParseTemplate(source));
  return ChatTemplate(std::shared_ptr<const jinja::Template>(std::move(tmpl)), std::move(bos_token),
                      std::move(eos_token));
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::json& messages,
                                                 const ChatTemplateOptions& options) const {
  if (!messages.is_array()) return absl::InvalidArgumentError("messages must be an array");
  if (!options.extra_context.is_object()) {
    return absl::InvalidArgumentError("extra_context must be an object");
  }
  jinja::ValueDict variables;
  TP_ASSIGN_OR_RETURN(jinja::Value message_values, jinja::FromJson(messages));
  variables.Set(jinja::Value("messages"), std::move(message_values));
  variables.Set(jinja::Value("add_generation_prompt"), jinja::Value(options.add_generation_prompt));
  variables.Set(jinja::Value("bos_token"), jinja::Value(bos_token_));
  variables.Set(jinja::Value("eos_token"), jinja::Value(eos_token_));
  variables.Set(jinja::Value("tools"), jinja::Value::None());
  variables.Set(jinja::Value("documents"), jinja::Value::None());
  for (const auto& [key, value] : options.extra_context.items()) {
    TP_ASSIGN_OR_RETURN(jinja::Value v, jinja::FromJson(value));
    variables.Set(jinja::Value(key), std::move(v));
  }
  jinja::Interpreter interpreter(*template_, {.now = options.now.value_or(std::chrono::system_clock::now())});
  return interpreter.Render(variables);
}

std::string_view ChatTemplate::ChatMlSource() { return kChatMlSource; }

}  // namespace triplane::engine::chat
