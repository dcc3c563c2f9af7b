// Tests (`x is name`) of jinja2 3.1.

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "engine/chat/jinja_builtins.h"
#include "engine/chat/jinja_interpreter.h"
#include "engine/chat/jinja_operators.h"
#include "engine/chat/jinja_strings.h"

namespace triplane::engine::chat::jinja {
namespace {

using TestFn = absl::StatusOr<bool> (*)(Interpreter&, const Value&, const CallArgs&);

absl::StatusOr<const Value*> OneArgument(std::string_view test, const CallArgs& args) {
  if (args.positional.size() + args.keyword.size() != 1) {
    return absl::InvalidArgumentError(fmt::format("test '{}' takes one argument", test));
  }
  return args.positional.empty() ? &args.keyword[0].second : &args.positional[0];
}

absl::StatusOr<bool> CompareWith(Interpreter& interp, std::string_view test, const Value& in,
                                 const CallArgs& args, bool (*accept)(int)) {
  TP_ASSIGN_OR_RETURN(const Value* other, OneArgument(test, args));
  TP_ASSIGN_OR_RETURN(int c, Compare(in, *other, interp.budget()));
  return accept(c);
}

bool IsIntegerNotBool(const Value& v) { return v.kind() == ValueKind::kInt; }

struct TestEntry {
  std::string_view name;
  TestFn fn;
};

const TestEntry kTests[] = {
    {"defined", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> { return !v.is_undefined(); }},
    {"undefined", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> { return v.is_undefined(); }},
    {"none", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> { return v.is_none(); }},
    {"boolean", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> { return v.kind() == ValueKind::kBool; }},
    {"true", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> { return v.kind() == ValueKind::kBool && v.as_bool(); }},
    {"false", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> { return v.kind() == ValueKind::kBool && !v.as_bool(); }},
    {"integer", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> { return IsIntegerNotBool(v); }},
    {"float", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> { return v.kind() == ValueKind::kFloat; }},
    {"number", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> { return v.is_number(); }},
    {"string", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> { return v.is_string(); }},
    {"mapping", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> { return v.is_dict(); }},
    {"callable", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> { return v.kind() == ValueKind::kCallable; }},
    {"escaped", [](Interpreter&, const Value&, const CallArgs&) -> absl::StatusOr<bool> { return false; }},
    // jinja2's Undefined is iterable and has len() and [].
    {"iterable", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> {
       return v.is_undefined() || v.is_string() || v.is_list_like() || v.is_dict();
     }},
    {"sequence", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> {
       return v.is_undefined() || v.is_string() || v.is_list_like() || v.is_dict();
     }},
    {"lower", [](Interpreter& interp, const Value& v, const CallArgs&) -> absl::StatusOr<bool> {
       const std::string s = ToStr(v, interp.budget());
       return PyLower(s) == s && PyUpper(s) != s;
     }},
    {"upper", [](Interpreter& interp, const Value& v, const CallArgs&) -> absl::StatusOr<bool> {
       const std::string s = ToStr(v, interp.budget());
       return PyUpper(s) == s && PyLower(s) != s;
     }},
    {"odd", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> {
       if (v.kind() != ValueKind::kInt && v.kind() != ValueKind::kBool) return absl::InvalidArgumentError("test 'odd' needs an integer");
       return v.as_int() % 2 != 0;
     }},
    {"even", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> {
       if (v.kind() != ValueKind::kInt && v.kind() != ValueKind::kBool) return absl::InvalidArgumentError("test 'even' needs an integer");
       return v.as_int() % 2 == 0;
     }},
    {"divisibleby", [](Interpreter&, const Value& v, const CallArgs& args) -> absl::StatusOr<bool> {
       TP_ASSIGN_OR_RETURN(const Value* n, OneArgument("divisibleby", args));
       if (!v.is_number() || !n->is_number() || v.kind() == ValueKind::kFloat || n->kind() == ValueKind::kFloat) {
         return absl::InvalidArgumentError("test 'divisibleby' needs integers");
       }
       if (n->as_int() == 0) return absl::InvalidArgumentError("integer division or modulo by zero");
       if (n->as_int() == -1) return true;
       return v.as_int() % n->as_int() == 0;
     }},
    {"sameas", [](Interpreter&, const Value& v, const CallArgs& args) -> absl::StatusOr<bool> {
       TP_ASSIGN_OR_RETURN(const Value* other, OneArgument("sameas", args));
       // Python's `is`: singletons and identical objects; small ints and equal strings
       // are not reliably identical there, so only exact kinds compare by value here.
       if (v.is_none() || v.is_undefined() || v.kind() == ValueKind::kBool) {
         return v.kind() == other->kind() && (v.kind() != ValueKind::kBool || v.as_bool() == other->as_bool());
       }
       return v.SameObject(*other);
     }},
    {"in", [](Interpreter& interp, const Value& v, const CallArgs& args) -> absl::StatusOr<bool> {
       TP_ASSIGN_OR_RETURN(const Value* seq, OneArgument("in", args));
       return Contains(*seq, v, interp.budget());
     }},
    {"filter", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> {
       return v.is_string() && IsKnownFilter(v.as_string());
     }},
    {"test", [](Interpreter&, const Value& v, const CallArgs&) -> absl::StatusOr<bool> {
       return v.is_string() && IsKnownTest(v.as_string());
     }},
    {"eq", [](Interpreter& interp, const Value& v, const CallArgs& args) -> absl::StatusOr<bool> {
       TP_ASSIGN_OR_RETURN(const Value* other, OneArgument("eq", args));
       return Equals(v, *other, interp.budget());
     }},
    {"ne", [](Interpreter& interp, const Value& v, const CallArgs& args) -> absl::StatusOr<bool> {
       TP_ASSIGN_OR_RETURN(const Value* other, OneArgument("ne", args));
       return !Equals(v, *other, interp.budget());
     }},
    {"lt", [](Interpreter& interp, const Value& v, const CallArgs& args) -> absl::StatusOr<bool> {
       return CompareWith(interp, "lt", v, args, [](int c) { return c < 0; });
     }},
    {"le", [](Interpreter& interp, const Value& v, const CallArgs& args) -> absl::StatusOr<bool> {
       return CompareWith(interp, "le", v, args, [](int c) { return c <= 0; });
     }},
    {"gt", [](Interpreter& interp, const Value& v, const CallArgs& args) -> absl::StatusOr<bool> {
       return CompareWith(interp, "gt", v, args, [](int c) { return c > 0; });
     }},
    {"ge", [](Interpreter& interp, const Value& v, const CallArgs& args) -> absl::StatusOr<bool> {
       return CompareWith(interp, "ge", v, args, [](int c) { return c >= 0; });
     }},
};

// jinja2's aliases of the comparison tests.
std::string_view Canonical(std::string_view name) {
  if (name == "==" || name == "equalto") return "eq";
  if (name == "!=") return "ne";
  if (name == "<" || name == "lessthan") return "lt";
  if (name == "<=") return "le";
  if (name == ">" || name == "greaterthan") return "gt";
  if (name == ">=") return "ge";
  return name;
}

TestFn FindTest(std::string_view name) {
  name = Canonical(name);
  for (const TestEntry& entry : kTests) {
    if (entry.name == name) return entry.fn;
  }
  return nullptr;
}

}  // namespace

bool IsKnownTest(std::string_view name) { return FindTest(name) != nullptr; }

absl::StatusOr<bool> ApplyTest(Interpreter& interpreter, std::string_view name, const Value& input,
                               const CallArgs& args) {
  const TestFn fn = FindTest(name);
  if (fn == nullptr) return absl::InvalidArgumentError(fmt::format("no test named '{}'", name));
  return fn(interpreter, input, args);
}

}  // namespace triplane::engine::chat::jinja
