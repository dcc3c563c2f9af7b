#pragma once

// The filters, tests, globals and str/list/dict methods templates can use, as
// jinja2 3.1 and Hugging Face's chat-template environment define them (tojson is
// json.dumps with ensure_ascii=False; raise_exception and strftime_now are globals).
// Methods that modify a list or dict (append, pop, update, ...) are refused, as in
// Hugging Face's ImmutableSandboxedEnvironment.

#include <string_view>

#include "absl/status/statusor.h"
#include "engine/chat/jinja_callable.h"
#include "engine/chat/jinja_value.h"

namespace triplane::engine::chat::jinja {

class Interpreter;

// True if `name` is a filter / test this environment provides.
bool IsKnownFilter(std::string_view name);
bool IsKnownTest(std::string_view name);

// input | name(args). InvalidArgument for an unknown filter or bad arguments.
[[nodiscard]] absl::StatusOr<Value> ApplyFilter(Interpreter& interpreter, std::string_view name,
                                                const Value& input, const CallArgs& args);
// input is name(args).
[[nodiscard]] absl::StatusOr<bool> ApplyTest(Interpreter& interpreter, std::string_view name,
                                             const Value& input, const CallArgs& args);

// The global function `name` (range, dict, namespace, raise_exception, strftime_now),
// or undefined.
Value FindGlobal(std::string_view name);

// `receiver.name` bound as a callable when `receiver` (str, list, tuple or dict) has a
// method of that name; for a modifying list/dict method an undefined whose hint says it
// is unsafe (calling it fails); an undefined without hint when there is no such method.
Value FindMethod(const Value& receiver, std::string_view name);

// The `loop.cycle` function of a loop at index `index0`.
Value MakeLoopCycle(int64_t index0);

}  // namespace triplane::engine::chat::jinja
