#pragma once

// Runtime values of the Jinja interpreter, with Python's semantics where templates can
// observe them: truthiness, str() and repr() text, equality and ordering, json.dumps.
//
// Strings are immutable and shared; lists, dicts and namespaces have reference
// semantics as in Python (a namespace attribute set through one reference is seen
// through every other). Values are created and used by one render only, so nothing
// here is synchronised: thread-compatible.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace triplane::engine::chat::jinja {

class Callable;
class Value;
class ValueDict;

using ValueList = std::vector<Value>;

// Deepest nesting of lists, tuples and dicts a render may build (the interpreter
// refuses deeper values), so that walking or freeing a value cannot exhaust the stack.
inline constexpr int kMaxValueDepth = 200;

// Work allowance for the deep operations of one render (str(), repr(), json, ==, <,
// in). Lists may share sub-lists, so their logical size can be exponential in the
// work that built them; these operations stop early once the allowance is spent, and the
// interpreter then fails the render. Also caps the strings they produce.
class WorkBudget {
 public:
  WorkBudget() = default;
  WorkBudget(int64_t units, size_t max_string_bytes) : units_(units), max_string_bytes_(max_string_bytes) {}
  // Spends `units`; false once the allowance is exhausted.
  bool Spend(int64_t units) {
    units_ -= units;
    return units_ >= 0;
  }
  void Exhaust() { units_ = -1; }
  bool exhausted() const { return units_ < 0; }
  size_t max_string_bytes() const { return max_string_bytes_; }

 private:
  int64_t units_ = int64_t{1} << 28;
  size_t max_string_bytes_ = size_t{8} << 20;
};

enum class ValueKind : uint8_t {
  kUndefined,  // a missing variable, attribute or item (jinja2.Undefined)
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,
  kTuple,      // an immutable list: the items of dict.items(), `(a, b)` literals
  kDict,       // insertion-ordered, keys are strings, numbers, booleans or none
  kNamespace,  // namespace(): attributes assignable with {% set ns.x = ... %}
  kCallable,   // a macro, a global function or a bound method
};

class Value {
 public:
  // Undefined.
  Value() = default;
  // Undefined whose use fails with `hint` (e.g. "'x' is undefined").
  static Value Undefined(std::string hint);
  static Value None();
  explicit Value(bool b) : kind_(ValueKind::kBool), data_(b) {}
  explicit Value(int64_t i) : kind_(ValueKind::kInt), data_(i) {}
  explicit Value(double d) : kind_(ValueKind::kFloat), data_(d) {}
  explicit Value(std::string s)
      : kind_(ValueKind::kString), data_(std::make_shared<const std::string>(std::move(s))) {}
  explicit Value(std::string_view s) : Value(std::string(s)) {}
  explicit Value(const char* s) : Value(std::string(s)) {}
  static Value List(ValueList items);
  static Value Tuple(ValueList items);
  static Value Dict(ValueDict dict);
  static Value Namespace(ValueDict attributes);
  static Value Function(std::shared_ptr<const Callable> callable);

  ValueKind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == ValueKind::kUndefined; }
  bool is_none() const { return kind_ == ValueKind::kNone; }
  bool is_string() const { return kind_ == ValueKind::kString; }
  // Bool, int or float (Python's bool is an int).
  bool is_number() const {
    return kind_ == ValueKind::kBool || kind_ == ValueKind::kInt || kind_ == ValueKind::kFloat;
  }
  bool is_list_like() const { return kind_ == ValueKind::kList || kind_ == ValueKind::kTuple; }
  bool is_dict() const { return kind_ == ValueKind::kDict; }

  // Accessors; REQUIRE the matching kind (as_int also accepts a bool).
  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const;
  // Any number as a double.
  double as_double() const;
  const std::string& as_string() const { return *std::get<StringPtr>(data_); }
  // List or tuple items.
  const ValueList& as_list() const { return *std::get<ListPtr>(data_); }
  // Dict or namespace; mutable for {% set ns.x %} (reference semantics).
  ValueDict& as_dict() const { return *std::get<DictPtr>(data_); }
  const Callable& as_callable() const { return *std::get<CallablePtr>(data_); }
  // The message an undefined value fails with; empty when it has none.
  std::string_view undefined_hint() const;

  // True for the very same list, dict, namespace or callable object (`is sameas`).
  bool SameObject(const Value& other) const;

  // Nesting depth: 0 for scalars, 1 + the deepest item for containers (a namespace
  // counts its current attributes).
  int depth() const;
  // True for a namespace, or a container that holds one at any depth.
  bool holds_namespace() const { return holds_namespace_; }

 private:
  using StringPtr = std::shared_ptr<const std::string>;
  using ListPtr = std::shared_ptr<ValueList>;
  using DictPtr = std::shared_ptr<ValueDict>;
  using CallablePtr = std::shared_ptr<const Callable>;

  // Sets depth_ and holds_namespace_ from the items of a new container.
  void Measure();

  ValueKind kind_ = ValueKind::kUndefined;
  bool holds_namespace_ = false;
  uint16_t depth_ = 0;
  std::variant<std::monostate, bool, int64_t, double, StringPtr, ListPtr, DictPtr, CallablePtr>
      data_;
};

// A dict keeping insertion order, as Python's does. Lookup is a linear scan: template
// dicts (messages, tool schemas) have a handful of keys.
class ValueDict {
 public:
  using Entry = std::pair<Value, Value>;

  // The value under `key`, or nullptr.
  const Value* Find(const Value& key) const;
  const Value* Find(std::string_view key) const;
  // Inserts or replaces, keeping the first insertion's position.
  void Set(Value key, Value value);
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
};

// Python truthiness: false for undefined, none, false, 0, 0.0 and empty strings and
// containers.
bool IsTruthy(const Value& v);

// Python's type name of `v` for error messages ("str", "int", "dict", "NoneType", ...).
std::string_view TypeName(const Value& v);

// Appends Python's str(v): strings as they are, undefined as nothing, none as "None",
// booleans as "True"/"False", floats in repr form, containers as repr. Stops early
// (partial output) once `budget` is exhausted or `out` exceeds its string cap.
void AppendStr(const Value& v, std::string& out, WorkBudget& budget);
std::string ToStr(const Value& v, WorkBudget& budget);
// Python's repr(v) (strings quoted and escaped).
std::string Repr(const Value& v, WorkBudget& budget);
// Python's repr of a float: shortest round-trip digits, "1.0", "1e+16", "nan", "inf".
std::string FormatPythonFloat(double d);

// Python ==: numbers by value (True == 1), strings and containers by content, undefined
// equal only to undefined, namespaces and callables by identity. False once `budget` is
// exhausted.
bool Equals(const Value& a, const Value& b, WorkBudget& budget);
// == for dict keys (none, bool, int, float, str): no budget needed.
bool KeyEquals(const Value& a, const Value& b);
// Python's ordering (<): numbers with numbers, strings with strings (code point order),
// lists and tuples lexicographically; anything else is InvalidArgument. Returns <0, 0, >0.
absl::StatusOr<int> Compare(const Value& a, const Value& b, WorkBudget& budget);

// Options of Python's json.dumps as Hugging Face's `tojson` filter exposes them.
struct JsonDumpOptions {
  std::string indent;         // text per level; empty with `pretty` = newlines only
  bool pretty = false;        // indent given: one item per line
  bool ensure_ascii = false;  // escape non-ASCII as \uXXXX
  bool sort_keys = false;
  std::string item_separator = ", ";
  std::string key_separator = ": ";
};
// json.dumps(v): InvalidArgument for undefined, callables and namespaces (Python's
// TypeError "not JSON serializable") or an exhausted `budget`.
absl::StatusOr<std::string> DumpJson(const Value& v, const JsonDumpOptions& options, WorkBudget& budget);

// The Value of parsed JSON: objects become dicts (in nlohmann's key order), arrays lists,
// integers ints (unsigned beyond int64 become floats). InvalidArgument when nested
// deeper than kMaxValueDepth.
absl::StatusOr<Value> FromJson(const nlohmann::json& json);

// Code points of a UTF-8 string (invalid bytes become U+FFFD), and back.
std::u32string DecodeUtf8(std::string_view s);
std::string EncodeUtf8(std::u32string_view s);
// Length in code points, as Python's len(str).
size_t CodePointCount(std::string_view s);
// Python's str.isspace() for one code point.
bool IsPythonSpace(char32_t cp);

}  // namespace triplane::engine::chat::jinja
