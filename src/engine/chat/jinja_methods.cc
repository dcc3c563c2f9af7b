// Methods of str, list and dict values (`'a b'.split()`, `message.get('content')`).

#include <fmt/format.h>

#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "engine/chat/jinja_builtins.h"
#include "engine/chat/jinja_interpreter.h"
#include "engine/chat/jinja_strings.h"

namespace triplane::engine::chat::jinja {
namespace {

using MethodFn = absl::StatusOr<Value> (*)(Interpreter&, const Value& self, const CallArgs& args);

// `receiver.name` as a callable.
class BoundMethod : public Callable {
 public:
  BoundMethod(Value receiver, std::string_view name, MethodFn fn)
      : receiver_(std::move(receiver)), name_(name), fn_(fn) {}
  std::string_view name() const override { return name_; }
  absl::StatusOr<Value> Call(Interpreter& interpreter, CallArgs args) const override {
    return fn_(interpreter, receiver_, args);
  }

 private:
  Value receiver_;
  std::string_view name_;
  MethodFn fn_;
};

absl::StatusOr<std::optional<std::string_view>> OptionalMethodString(std::string_view method, const Value* v) {
  if (v == nullptr || v->is_none()) return std::nullopt;
  if (!v->is_string()) {
    return absl::InvalidArgumentError(fmt::format("{}() argument must be str or None, not {}", method, TypeName(*v)));
  }
  return std::optional<std::string_view>(v->as_string());
}

absl::StatusOr<std::string_view> RequiredString(std::string_view method, const Value* v) {
  if (v == nullptr) return absl::InvalidArgumentError(fmt::format("{}() missing a required argument", method));
  if (!v->is_string()) {
    return absl::InvalidArgumentError(fmt::format("{}() argument must be str, not {}", method, TypeName(*v)));
  }
  return std::string_view(v->as_string());
}

absl::StatusOr<int64_t> OptionalInt(std::string_view method, const Value* v, int64_t fallback) {
  if (v == nullptr || v->is_none()) return fallback;
  if (v->kind() != ValueKind::kInt && v->kind() != ValueKind::kBool) {
    return absl::InvalidArgumentError(fmt::format("{}() argument must be int, not {}", method, TypeName(*v)));
  }
  return v->as_int();
}

Value StringList(std::vector<std::string> parts) {
  ValueList items;
  items.reserve(parts.size());
  for (std::string& part : parts) items.emplace_back(std::move(part));
  return Value::List(std::move(items));
}

absl::StatusOr<Value> Strip(const Value& self, const CallArgs& args, std::string_view name, bool left, bool right) {
  TP_RETURN_IF_ERROR(args.Check(name, 1, {}));
  TP_ASSIGN_OR_RETURN(std::optional<std::string_view> chars, OptionalMethodString(name, args.Get(0, "")));
  return Value(PyStrip(self.as_string(), chars, left, right));
}

absl::StatusOr<Value> Split(const Value& self, const CallArgs& args, bool from_right) {
  const std::string_view name = from_right ? "rsplit" : "split";
  TP_RETURN_IF_ERROR(args.Check(name, 2, {"sep", "maxsplit"}));
  TP_ASSIGN_OR_RETURN(std::optional<std::string_view> sep, OptionalMethodString(name, args.Get(0, "sep")));
  TP_ASSIGN_OR_RETURN(int64_t maxsplit, OptionalInt(name, args.Get(1, "maxsplit"), -1));
  TP_ASSIGN_OR_RETURN(std::vector<std::string> parts, PySplit(self.as_string(), sep, maxsplit, from_right));
  return StringList(std::move(parts));
}

// startswith / endswith with a string or a tuple of strings.
absl::StatusOr<Value> Affix(const Value& self, const CallArgs& args, bool prefix) {
  const std::string_view name = prefix ? "startswith" : "endswith";
  TP_RETURN_IF_ERROR(args.Check(name, 1, {}));
  const Value* affix = args.Get(0, "");
  if (affix == nullptr) return absl::InvalidArgumentError(fmt::format("{}() takes one argument", name));
  const std::string& s = self.as_string();
  auto matches = [&](const Value& a) -> absl::StatusOr<bool> {
    TP_ASSIGN_OR_RETURN(std::string_view text, RequiredString(name, &a));
    return prefix ? s.starts_with(text) : s.ends_with(text);
  };
  if (affix->is_list_like()) {
    for (const Value& a : affix->as_list()) {
      TP_ASSIGN_OR_RETURN(bool m, matches(a));
      if (m) return Value(true);
    }
    return Value(false);
  }
  TP_ASSIGN_OR_RETURN(bool m, matches(*affix));
  return Value(m);
}

// find / rfind / count / index on code point positions.
absl::StatusOr<Value> Search(const Value& self, const CallArgs& args, std::string_view name) {
  TP_RETURN_IF_ERROR(args.Check(name, 1, {}));
  TP_ASSIGN_OR_RETURN(std::string_view sub, RequiredString(name, args.Get(0, "")));
  const std::string& s = self.as_string();
  if (name == "count") {
    if (sub.empty()) return Value(static_cast<int64_t>(CodePointCount(s) + 1));
    int64_t n = 0;
    for (size_t pos = s.find(sub); pos != std::string::npos; pos = s.find(sub, pos + sub.size())) ++n;
    return Value(n);
  }
  const size_t pos = name == "rfind" ? s.rfind(sub) : s.find(sub);
  if (pos == std::string::npos) {
    if (name == "index") return absl::InvalidArgumentError("substring not found");
    return Value(int64_t{-1});
  }
  return Value(static_cast<int64_t>(CodePointCount(std::string_view(s).substr(0, pos))));
}

// isdigit / isalpha / isalnum / isspace on ASCII classes and Python's whitespace.
absl::StatusOr<Value> Classify(const Value& self, const CallArgs& args, std::string_view name) {
  TP_RETURN_IF_ERROR(args.Check(name, 0, {}));
  const std::u32string chars = DecodeUtf8(self.as_string());
  if (chars.empty()) return Value(false);
  for (char32_t cp : chars) {
    const bool digit = cp >= '0' && cp <= '9';
    const bool alpha = (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    bool ok = false;
    if (name == "isdigit") ok = digit;
    if (name == "isalpha") ok = alpha;
    if (name == "isalnum") ok = digit || alpha;
    if (name == "isspace") ok = IsPythonSpace(cp);
    if (!ok) return Value(false);
  }
  return Value(true);
}

struct MethodEntry {
  std::string_view name;
  MethodFn fn;
};

const MethodEntry kStringMethods[] = {
    {"strip", [](Interpreter&, const Value& s, const CallArgs& a) { return Strip(s, a, "strip", true, true); }},
    {"lstrip", [](Interpreter&, const Value& s, const CallArgs& a) { return Strip(s, a, "lstrip", true, false); }},
    {"rstrip", [](Interpreter&, const Value& s, const CallArgs& a) { return Strip(s, a, "rstrip", false, true); }},
    {"split", [](Interpreter&, const Value& s, const CallArgs& a) { return Split(s, a, false); }},
    {"rsplit", [](Interpreter&, const Value& s, const CallArgs& a) { return Split(s, a, true); }},
    {"splitlines", [](Interpreter&, const Value& s, const CallArgs& a) -> absl::StatusOr<Value> {
       TP_RETURN_IF_ERROR(a.Check("splitlines", 0, {}));
       return StringList(PySplitLines(s.as_string()));
     }},
    {"startswith", [](Interpreter&, const Value& s, const CallArgs& a) { return Affix(s, a, true); }},
    {"endswith", [](Interpreter&, const Value& s, const CallArgs& a) { return Affix(s, a, false); }},
    {"upper", [](Interpreter&, const Value& s, const CallArgs&) -> absl::StatusOr<Value> { return Value(PyUpper(s.as_string())); }},
    {"lower", [](Interpreter&, const Value& s, const CallArgs&) -> absl::StatusOr<Value> { return Value(PyLower(s.as_string())); }},
    {"title", [](Interpreter&, const Value& s, const CallArgs&) -> absl::StatusOr<Value> { return Value(PyTitle(s.as_string())); }},
    {"capitalize", [](Interpreter&, const Value& s, const CallArgs&) -> absl::StatusOr<Value> {
       return Value(PyCapitalize(s.as_string()));
     }},
    {"replace", [](Interpreter& interp, const Value& s, const CallArgs& a) -> absl::StatusOr<Value> {
       TP_RETURN_IF_ERROR(a.Check("replace", 3, {}));
       TP_ASSIGN_OR_RETURN(std::string_view old, RequiredString("replace", a.Get(0, "")));
       TP_ASSIGN_OR_RETURN(std::string_view repl, RequiredString("replace", a.Get(1, "")));
       TP_ASSIGN_OR_RETURN(int64_t count, OptionalInt("replace", a.Get(2, ""), -1));
       TP_ASSIGN_OR_RETURN(std::string out, PyReplace(s.as_string(), old, repl, count, interp.limits().max_output_bytes));
       return Value(std::move(out));
     }},
    {"format", [](Interpreter& interp, const Value& s, const CallArgs& a) -> absl::StatusOr<Value> {
       TP_ASSIGN_OR_RETURN(std::string out, PyFormat(s.as_string(), a.positional, a.keyword, interp.budget()));
       if (out.size() > interp.limits().max_output_bytes) return absl::InvalidArgumentError("format result too large");
       return Value(std::move(out));
     }},
    {"join", [](Interpreter& interp, const Value& s, const CallArgs& a) -> absl::StatusOr<Value> {
       TP_RETURN_IF_ERROR(a.Check("join", 1, {}));
       const Value* items = a.Get(0, "");
       if (items == nullptr || !(items->is_list_like() || items->is_string())) {
         return absl::InvalidArgumentError("join() needs a list of strings");
       }
       std::string out;
       const ValueList parts = items->is_list_like() ? items->as_list() : ValueList{};
       for (size_t i = 0; i < parts.size(); ++i) {
         if (!parts[i].is_string()) {
           return absl::InvalidArgumentError(fmt::format("join(): item {} is {}, not str", i, TypeName(parts[i])));
         }
         if (i > 0) out += s.as_string();
         out += parts[i].as_string();
         if (out.size() > interp.limits().max_output_bytes) return absl::InvalidArgumentError("join result too large");
       }
       return Value(std::move(out));
     }},
    {"find", [](Interpreter&, const Value& s, const CallArgs& a) { return Search(s, a, "find"); }},
    {"rfind", [](Interpreter&, const Value& s, const CallArgs& a) { return Search(s, a, "rfind"); }},
    {"index", [](Interpreter&, const Value& s, const CallArgs& a) { return Search(s, a, "index"); }},
    {"count", [](Interpreter&, const Value& s, const CallArgs& a) { return Search(s, a, "count"); }},
    {"isdigit", [](Interpreter&, const Value& s, const CallArgs& a) { return Classify(s, a, "isdigit"); }},
    {"isalpha", [](Interpreter&, const Value& s, const CallArgs& a) { return Classify(s, a, "isalpha"); }},
    {"isalnum", [](Interpreter&, const Value& s, const CallArgs& a) { return Classify(s, a, "isalnum"); }},
    {"isspace", [](Interpreter&, const Value& s, const CallArgs& a) { return Classify(s, a, "isspace"); }},
};

const MethodEntry kDictMethods[] = {
    {"get", [](Interpreter&, const Value& d, const CallArgs& a) -> absl::StatusOr<Value> {
       TP_RETURN_IF_ERROR(a.Check("get", 2, {}));
       const Value* key = a.Get(0, "");
       if (key == nullptr) return absl::InvalidArgumentError("get() needs a key");
       if (const Value* v = d.as_dict().Find(*key); v != nullptr) return *v;
       const Value* fallback = a.Get(1, "");
       return fallback != nullptr ? *fallback : Value::None();
     }},
    {"items", [](Interpreter&, const Value& d, const CallArgs& a) -> absl::StatusOr<Value> {
       TP_RETURN_IF_ERROR(a.Check("items", 0, {}));
       ValueList items;
       for (const auto& [key, value] : d.as_dict().entries()) items.push_back(Value::Tuple({key, value}));
       return Value::List(std::move(items));
     }},
    {"keys", [](Interpreter&, const Value& d, const CallArgs& a) -> absl::StatusOr<Value> {
       TP_RETURN_IF_ERROR(a.Check("keys", 0, {}));
       ValueList keys;
       for (const auto& [key, value] : d.as_dict().entries()) keys.push_back(key);
       return Value::List(std::move(keys));
     }},
    {"values", [](Interpreter&, const Value& d, const CallArgs& a) -> absl::StatusOr<Value> {
       TP_RETURN_IF_ERROR(a.Check("values", 0, {}));
       ValueList values;
       for (const auto& [key, value] : d.as_dict().entries()) values.push_back(value);
       return Value::List(std::move(values));
     }},
};

const MethodEntry kListMethods[] = {
    {"index", [](Interpreter& interp, const Value& l, const CallArgs& a) -> absl::StatusOr<Value> {
       TP_RETURN_IF_ERROR(a.Check("index", 1, {}));
       const Value* x = a.Get(0, "");
       if (x == nullptr) return absl::InvalidArgumentError("index() takes one argument");
       for (size_t i = 0; i < l.as_list().size(); ++i) {
         if (Equals(l.as_list()[i], *x, interp.budget())) return Value(static_cast<int64_t>(i));
       }
       return absl::InvalidArgumentError("list.index(x): x not in list");
     }},
    {"count", [](Interpreter& interp, const Value& l, const CallArgs& a) -> absl::StatusOr<Value> {
       TP_RETURN_IF_ERROR(a.Check("count", 1, {}));
       const Value* x = a.Get(0, "");
       if (x == nullptr) return absl::InvalidArgumentError("count() takes one argument");
       int64_t n = 0;
       for (const Value& item : l.as_list()) n += Equals(item, *x, interp.budget()) ? 1 : 0;
       return Value(n);
     }},
};

// Methods that modify their object: Hugging Face's ImmutableSandboxedEnvironment
// refuses them.
constexpr std::string_view kUnsafeListMethods[] = {"append", "clear", "extend", "insert",
                                                   "pop", "remove", "reverse", "sort"};
constexpr std::string_view kUnsafeDictMethods[] = {"clear", "pop", "popitem", "setdefault", "update"};

template <size_t N>
MethodFn Lookup(const MethodEntry (&table)[N], std::string_view name) {
  for (const MethodEntry& entry : table) {
    if (entry.name == name) return entry.fn;
  }
  return nullptr;
}

template <size_t N>
bool Contains(const std::string_view (&table)[N], std::string_view name) {
  return std::find(std::begin(table), std::end(table), name) != std::end(table);
}

}  // namespace

Value FindMethod(const Value& receiver, std::string_view name) {
  MethodFn fn = nullptr;
  bool unsafe = false;
  if (receiver.is_string()) {
    fn = Lookup(kStringMethods, name);
  } else if (receiver.is_dict()) {
    fn = Lookup(kDictMethods, name);
    unsafe = Contains(kUnsafeDictMethods, name);
  } else if (receiver.is_list_like()) {
    fn = Lookup(kListMethods, name);
    unsafe = receiver.kind() == ValueKind::kList && Contains(kUnsafeListMethods, name);
  }
  if (fn != nullptr) return Value::Function(std::make_shared<BoundMethod>(receiver, name, fn));
  if (unsafe) {
    return Value::Undefined(
        fmt::format("access to attribute '{}' of '{}' object is unsafe.", name, TypeName(receiver)));
  }
  return Value();
}

}  // namespace triplane::engine::chat::jinja
