#pragma once

// Renders a Jinja template with JSON variables for the interpreter's unit tests.

#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/status_macros.h"
#include "engine/chat/jinja_interpreter.h"
#include "engine/chat/jinja_parser.h"
#include "engine/chat/jinja_value.h"
#include "nlohmann/json.hpp"

namespace triplane::engine::chat::jinja {

// 2024-07-26 12:00:00 UTC, what strftime_now() formats in these tests.
inline constexpr int64_t kTestNow = 1721995200;

// Parses and renders `source` with the members of `variables` (a JSON object) as its
// top-level names.
inline absl::StatusOr<std::string> RenderJinja(std::string_view source,
                                               const nlohmann::json& variables = nlohmann::json::object(),
                                               RenderLimits limits = {}) {
  TP_ASSIGN_OR_RETURN(auto tmpl, ParseTemplate(source));
  ValueDict names;
  for (const auto& [key, value] : variables.items()) {
    TP_ASSIGN_OR_RETURN(Value v, FromJson(value));
    names.Set(Value(key), std::move(v));
  }
  Interpreter interpreter(*tmpl, {.limits = limits, .now = std::chrono::system_clock::from_time_t(kTestNow)});
  return interpreter.Render(names);
}

}  // namespace triplane::engine::chat::jinja
