#pragma once

// Things a template can call: macros, global functions (range, namespace, ...) and bound
// methods ('a,b'.split). Arguments arrive as Python would pass them.

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/chat/jinja_value.h"

namespace triplane::engine::chat::jinja {

class Interpreter;

// Positional and keyword arguments of one call, in source order.
struct CallArgs {
  ValueList positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The keyword argument `name`, or nullptr.
  const Value* FindKeyword(std::string_view name) const;
  // Python's parameter binding for a builtin: argument `index` by position, else by the
  // keyword `name`, else nullptr.
  const Value* Get(size_t index, std::string_view name) const;
  // InvalidArgument naming `function` if more than `max_positional` positional arguments
  // or a keyword outside `names` was passed.
  absl::Status Check(std::string_view function, size_t max_positional,
                     std::initializer_list<std::string_view> names) const;
};

// Immutable once built; Call may run on any render (the interpreter holds the per-render
// state), so implementations keep no mutable state.
class Callable {
 public:
  virtual ~Callable() = default;
  // For repr and error messages.
  virtual std::string_view name() const = 0;
  // Runs the call. Errors are the template's errors (InvalidArgument).
  virtual absl::StatusOr<Value> Call(Interpreter& interpreter, CallArgs args) const = 0;
};

}  // namespace triplane::engine::chat::jinja
