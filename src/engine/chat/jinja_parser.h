#pragma once

// Parses a Jinja template into a syntax tree (jinja_ast.h). Supported statements: if /
// elif / else, for (with unpacking, `if` filter, else, loop variables), set (names,
// tuples, namespace attributes, blocks), macro, filter blocks, break / continue,
// generation, raw, comments. Expressions follow jinja2's grammar and precedence.

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/chat/jinja_ast.h"

namespace triplane::engine::chat::jinja {

// Parses `source`. InvalidArgument with "line L, column C" for a syntax error, an
// unknown tag, an unknown filter or test outside a conditional (jinja2 reports those at
// compile time too), or nesting deeper than kMaxNestingDepth. Cost: linear in the
// source.
[[nodiscard]] absl::StatusOr<std::unique_ptr<const Template>> ParseTemplate(std::string_view source);

}  // namespace triplane::engine::chat::jinja
