// Filters of jinja2 3.1 used by chat templates, plus Hugging Face's tojson.

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>
#include <system_error>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "engine/chat/jinja_builtins.h"
#include "engine/chat/jinja_interpreter.h"
#include "engine/chat/jinja_operators.h"
#include "engine/chat/jinja_strings.h"

namespace triplane::engine::chat::jinja {
namespace {

using FilterFn = absl::StatusOr<Value> (*)(Interpreter&, const Value&, const CallArgs&);

absl::Status BadArgument(std::string_view filter, std::string_view what) {
  return absl::InvalidArgumentError(fmt::format("filter {}: {}", filter, what));
}

absl::Status RequireUsable(std::string_view filter, const Value& input) {
  if (!input.is_undefined()) return absl::OkStatus();
  const std::string_view hint = input.undefined_hint();
  return absl::InvalidArgumentError(hint.empty() ? fmt::format("filter {}: undefined value", filter)
                                                 : std::string(hint));
}

// An optional string argument (none or absent = nullopt).
absl::StatusOr<std::optional<std::string_view>> OptionalString(std::string_view filter, const Value* v) {
  if (v == nullptr || v->is_none() || v->is_undefined()) return std::nullopt;
  if (!v->is_string()) return BadArgument(filter, fmt::format("expected a string, got {}", TypeName(*v)));
  return std::optional<std::string_view>(v->as_string());
}

absl::StatusOr<int64_t> IntArgument(std::string_view filter, const Value* v, int64_t fallback) {
  if (v == nullptr || v->is_none() || v->is_undefined()) return fallback;
  if (v->kind() != ValueKind::kInt && v->kind() != ValueKind::kBool) {
    return BadArgument(filter, fmt::format("expected an integer, got {}", TypeName(*v)));
  }
  return v->as_int();
}

bool BoolArgument(const Value* v, bool fallback) { return v == nullptr ? fallback : IsTruthy(*v); }

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0.
absl::StatusOr<Value> GetPath(Interpreter& interp, const Value& obj, std::string_view path) {
  Value current = obj;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string_view part = path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    int64_t index = 0;
    const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), index);
    const bool numeric = !part.empty() && ec == std::errc() && ptr == part.data() + part.size();
    TP_ASSIGN_OR_RETURN(current, interp.GetItem(current, numeric ? Value(index) : Value(part)));
    if (dot == std::string_view::npos) return current;
    start = dot + 1;
  }
}

// Sort key of jinja2's sort/unique/min/max/dictsort: lower-cased strings unless
// case-sensitive.
Value SortKey(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(PyLower(v.as_string()));
  return v;
}

// ---- Filters -------------------------------------------------------------------

absl::StatusOr<Value> Abs(Interpreter&, const Value& in, const CallArgs&) {
  if (in.kind() == ValueKind::kFloat) return Value(std::fabs(in.as_double()));
  if (in.kind() == ValueKind::kInt || in.kind() == ValueKind::kBool) {
    if (in.as_int() == std::numeric_limits<int64_t>::min()) return absl::InvalidArgumentError("integer overflow");
    return Value(in.as_int() < 0 ? -in.as_int() : in.as_int());
  }
  return BadArgument("abs", fmt::format("bad operand type '{}'", TypeName(in)));
}

absl::StatusOr<Value> Attr(Interpreter& interp, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("attr", 1, {"name"}));
  TP_ASSIGN_OR_RETURN(std::optional<std::string_view> name, OptionalString("attr", args.Get(0, "name")));
  if (!name) return BadArgument("attr", "missing attribute name");
  if (in.is_dict()) {
    // attr() looks up attributes only, never dict keys.
    Value method = FindMethod(in, *name);
    if (!method.is_undefined() || !method.undefined_hint().empty()) return method;
    return Value::Undefined(fmt::format("'dict object' has no attribute '{}'", *name));
  }
  return interp.GetAttribute(in, *name);
}

absl::StatusOr<Value> Capitalize(Interpreter& interp, const Value& in, const CallArgs&) {
  return Value(PyCapitalize(ToStr(in, interp.budget())));
}

absl::StatusOr<Value> Center(Interpreter& interp, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("center", 1, {"width"}));
  TP_ASSIGN_OR_RETURN(int64_t width, IntArgument("center", args.Get(0, "width"), 80));
  std::string s = ToStr(in, interp.budget());
  const int64_t length = static_cast<int64_t>(CodePointCount(s));
  if (width > static_cast<int64_t>(interp.limits().max_output_bytes)) return BadArgument("center", "width too large");
  if (width <= length) return Value(std::move(s));
  const int64_t pad = width - length;
  // CPython's split of the padding between the sides.
  const int64_t left = pad / 2 + (pad & width & 1);
  return Value(std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(pad - left), ' '));
}

absl::StatusOr<Value> Default(Interpreter&, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("default", 2, {"default_value", "boolean"}));
  const Value* fallback = args.Get(0, "default_value");
  const bool boolean = BoolArgument(args.Get(1, "boolean"), false);
  if (in.is_undefined() || (boolean && !IsTruthy(in))) return fallback != nullptr ? *fallback : Value("");
  return in;
}

absl::StatusOr<Value> DictSort(Interpreter& interp, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("dictsort", 3, {"case_sensitive", "by", "reverse"}));
  if (!in.is_dict()) return BadArgument("dictsort", fmt::format("expected a dict, got {}", TypeName(in)));
  const bool case_sensitive = BoolArgument(args.Get(0, "case_sensitive"), false);
  TP_ASSIGN_OR_RETURN(std::optional<std::string_view> by, OptionalString("dictsort", args.Get(1, "by")));
  const bool reverse = BoolArgument(args.Get(2, "reverse"), false);
  if (by && *by != "key" && *by != "value") return BadArgument("dictsort", "'by' must be 'key' or 'value'");
  const size_t pos = by && *by == "value" ? 1 : 0;
  ValueList items;
  for (const auto& [key, value] : in.as_dict().entries()) items.push_back(Value::Tuple({key, value}));
  absl::Status error;
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    if (!error.ok()) return false;
    absl::StatusOr<int> c = Compare(SortKey(a.as_list()[pos], case_sensitive), SortKey(b.as_list()[pos], case_sensitive),
                                    interp.budget());
    if (!c.ok()) {
      error = c.status();
      return false;
    }
    return reverse ? *c > 0 : *c < 0;
  });
  TP_RETURN_IF_ERROR(error);
  return Value::List(std::move(items));
}

absl::StatusOr<Value> Escape(Interpreter& interp, const Value& in, const CallArgs&) {
  std::string out;
  for (char c : ToStr(in, interp.budget())) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c); break;
    }
  }
  return Value(std::move(out));
}

absl::StatusOr<Value> First(Interpreter&, const Value& in, const CallArgs&) {
  TP_ASSIGN_OR_RETURN(ValueList items, Iterate(in));
  if (items.empty()) return Value::Undefined("No first item, sequence was empty.");
  return items.front();
}

absl::StatusOr<Value> Last(Interpreter&, const Value& in, const CallArgs&) {
  TP_ASSIGN_OR_RETURN(ValueList items, Iterate(in));
  if (items.empty()) return Value::Undefined("No last item, sequence was empty.");
  return items.back();
}

absl::StatusOr<Value> Float(Interpreter&, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("float", 1, {"default"}));
  const Value* fallback = args.Get(0, "default");
  if (in.is_number()) return Value(in.as_double());
  if (in.is_string()) {
    const std::string trimmed = PyStrip(in.as_string(), std::nullopt, true, true);
    double d = 0;
    const auto [ptr, ec] = std::from_chars(trimmed.data(), trimmed.data() + trimmed.size(), d);
    if (!trimmed.empty() && ec == std::errc() && ptr == trimmed.data() + trimmed.size()) return Value(d);
  }
  return fallback != nullptr ? *fallback : Value(0.0);
}

absl::StatusOr<Value> Int(Interpreter&, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("int", 2, {"default", "base"}));
  const Value* fallback = args.Get(0, "default");
  TP_ASSIGN_OR_RETURN(int64_t base, IntArgument("int", args.Get(1, "base"), 10));
  if (base < 2 || base > 36) return BadArgument("int", "base must be in 2..36");
  if (in.kind() == ValueKind::kInt || in.kind() == ValueKind::kBool) return Value(in.as_int());
  if (in.kind() == ValueKind::kFloat) {
    const double d = in.as_double();
    if (std::isfinite(d) && std::fabs(d) < 9.2e18) return Value(static_cast<int64_t>(d));
  }
  if (in.is_string()) {
    std::string text = PyStrip(in.as_string(), std::nullopt, true, true);
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    std::string_view digits = text;
    const bool negative = !digits.empty() && digits[0] == '-';
    if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
    // Python accepts the base's prefix: int('0x1A', 16).
    if (digits.size() > 2 && digits[0] == '0') {
      const char p = static_cast<char>(digits[1] | 0x20);
      if ((p == 'x' && base == 16) || (p == 'o' && base == 8) || (p == 'b' && base == 2)) digits.remove_prefix(2);
    }
    int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, static_cast<int>(base));
    if (!digits.empty() && ec == std::errc() && ptr == digits.data() + digits.size()) return Value(negative ? -v : v);
    double d = 0;
    const auto [fptr, fec] = std::from_chars(text.data(), text.data() + text.size(), d);
    if (!text.empty() && fec == std::errc() && fptr == text.data() + text.size() && std::fabs(d) < 9.2e18) {
      return Value(static_cast<int64_t>(d));
    }
  }
  return fallback != nullptr ? *fallback : Value(int64_t{0});
}

absl::StatusOr<Value> Indent(Interpreter& interp, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("indent", 3, {"width", "first", "blank"}));
  std::string indentation = "    ";
  if (const Value* width = args.Get(0, "width"); width != nullptr) {
    if (width->is_string()) {
      indentation = width->as_string();
    } else {
      TP_ASSIGN_OR_RETURN(int64_t n, IntArgument("indent", width, 4));
      if (n > 1024) return BadArgument("indent", "width too large");
      indentation.assign(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
    }
  }
  const bool first = BoolArgument(args.Get(1, "first"), false);
  const bool blank = BoolArgument(args.Get(2, "blank"), false);
  // jinja2 appends a newline before splitting so that a trailing newline survives.
  const std::vector<std::string> lines = PySplitLines(ToStr(in, interp.budget()) + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out.push_back('\n');
      if (blank || !lines[i].empty()) out += indentation;
    }
    out += lines[i];
    if (out.size() > interp.limits().max_output_bytes) return BadArgument("indent", "result too large");
  }
  if (first) out = indentation + out;
  return Value(std::move(out));
}

absl::StatusOr<Value> Items(Interpreter&, const Value& in, const CallArgs&) {
  if (in.is_undefined()) return Value::List({});
  if (!in.is_dict()) return BadArgument("items", fmt::format("expected a dict, got {}", TypeName(in)));
  ValueList items;
  for (const auto& [key, value] : in.as_dict().entries()) items.push_back(Value::Tuple({key, value}));
  return Value::List(std::move(items));
}

absl::StatusOr<Value> Join(Interpreter& interp, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("join", 2, {"d", "attribute"}));
  TP_ASSIGN_OR_RETURN(std::optional<std::string_view> sep, OptionalString("join", args.Get(0, "d")));
  const Value* attribute = args.Get(1, "attribute");
  TP_ASSIGN_OR_RETURN(ValueList items, Iterate(in));
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0 && sep) out += *sep;
    if (attribute != nullptr && !attribute->is_none()) {
      TP_ASSIGN_OR_RETURN(Value v, GetPath(interp, items[i], ToStr(*attribute, interp.budget())));
      AppendStr(v, out, interp.budget());
    } else {
      AppendStr(items[i], out, interp.budget());
    }
    if (out.size() > interp.limits().max_output_bytes) return BadArgument("join", "result too large");
  }
  return Value(std::move(out));
}

absl::StatusOr<Value> Length(Interpreter&, const Value& in, const CallArgs&) {
  switch (in.kind()) {
    case ValueKind::kUndefined:
      return Value(int64_t{0});
    case ValueKind::kString:
      return Value(static_cast<int64_t>(CodePointCount(in.as_string())));
    case ValueKind::kList:
    case ValueKind::kTuple:
      return Value(static_cast<int64_t>(in.as_list().size()));
    case ValueKind::kDict:
      return Value(static_cast<int64_t>(in.as_dict().size()));
    default:
      return BadArgument("length", fmt::format("object of type '{}' has no len()", TypeName(in)));
  }
}

absl::StatusOr<Value> List(Interpreter&, const Value& in, const CallArgs&) {
  TP_ASSIGN_OR_RETURN(ValueList items, Iterate(in));
  return Value::List(std::move(items));
}

absl::StatusOr<Value> Lower(Interpreter& interp, const Value& in, const CallArgs&) {
  return Value(PyLower(ToStr(in, interp.budget())));
}

absl::StatusOr<Value> Upper(Interpreter& interp, const Value& in, const CallArgs&) {
  return Value(PyUpper(ToStr(in, interp.budget())));
}

absl::StatusOr<Value> Title(Interpreter& interp, const Value& in, const CallArgs&) {
  return Value(PyTitle(ToStr(in, interp.budget())));
}

absl::StatusOr<Value> Map(Interpreter& interp, const Value& in, const CallArgs& args) {
  // jinja2 maps nothing over a falsy input (none included).
  TP_ASSIGN_OR_RETURN(ValueList items, IsTruthy(in) ? Iterate(in) : absl::StatusOr<ValueList>(ValueList{}));
  ValueList out;
  out.reserve(items.size());
  if (args.positional.empty()) {
    const Value* attribute = args.FindKeyword("attribute");
    if (attribute == nullptr) return BadArgument("map", "needs a filter name or attribute=");
    TP_RETURN_IF_ERROR(args.Check("map", 0, {"attribute", "default"}));
    const Value* fallback = args.FindKeyword("default");
    const std::string path = ToStr(*attribute, interp.budget());
    for (const Value& item : items) {
      TP_ASSIGN_OR_RETURN(Value v, GetPath(interp, item, path));
      out.push_back(v.is_undefined() && fallback != nullptr ? *fallback : std::move(v));
    }
    return Value::List(std::move(out));
  }
  if (!args.positional[0].is_string()) return BadArgument("map", "the filter name must be a string");
  const std::string name = args.positional[0].as_string();
  if (!IsKnownFilter(name)) return BadArgument("map", fmt::format("no filter named '{}'", name));
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : items) {
    TP_RETURN_IF_ERROR(interp.Step());
    TP_ASSIGN_OR_RETURN(Value v, ApplyFilter(interp, name, item, rest));
    out.push_back(std::move(v));
  }
  return Value::List(std::move(out));
}

// min / max: the extreme item by (case-insensitive) order, or undefined when empty.
absl::StatusOr<Value> Extreme(Interpreter& interp, const Value& in, const CallArgs& args, bool want_max) {
  TP_RETURN_IF_ERROR(args.Check(want_max ? "max" : "min", 2, {"case_sensitive", "attribute"}));
  const bool case_sensitive = BoolArgument(args.Get(0, "case_sensitive"), false);
  const Value* attribute = args.Get(1, "attribute");
  TP_ASSIGN_OR_RETURN(ValueList items, Iterate(in));
  if (items.empty()) return Value::Undefined(fmt::format("No aggregated item, sequence was empty."));
  size_t best = 0;
  Value best_key;
  for (size_t i = 0; i < items.size(); ++i) {
    Value key = items[i];
    if (attribute != nullptr && !attribute->is_none()) {
      TP_ASSIGN_OR_RETURN(key, GetPath(interp, items[i], ToStr(*attribute, interp.budget())));
    }
    key = SortKey(key, case_sensitive);
    if (i > 0) {
      TP_ASSIGN_OR_RETURN(int c, Compare(key, best_key, interp.budget()));
      if (want_max ? c <= 0 : c >= 0) continue;
    }
    best = i;
    best_key = std::move(key);
  }
  return items[best];
}

absl::StatusOr<Value> Max(Interpreter& interp, const Value& in, const CallArgs& args) {
  return Extreme(interp, in, args, true);
}

absl::StatusOr<Value> Min(Interpreter& interp, const Value& in, const CallArgs& args) {
  return Extreme(interp, in, args, false);
}

// select / reject / selectattr / rejectattr.
absl::StatusOr<Value> SelectOrReject(Interpreter& interp, const Value& in, const CallArgs& args,
                                     bool by_attribute, bool keep_matching) {
  // jinja2 selects nothing from a falsy input (none included).
  TP_ASSIGN_OR_RETURN(ValueList items, IsTruthy(in) ? Iterate(in) : absl::StatusOr<ValueList>(ValueList{}));
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty() || !args.positional[0].is_string()) {
      return BadArgument("selectattr", "needs an attribute name");
    }
    attribute = args.positional[0].as_string();
    next = 1;
  }
  std::string test;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) return BadArgument("select", "the test name must be a string");
    test = args.positional[next].as_string();
    if (!IsKnownTest(test)) return BadArgument("select", fmt::format("no test named '{}'", test));
    ++next;
  }
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(std::min(next, args.positional.size())),
                         args.positional.end());
  rest.keyword = args.keyword;
  ValueList out;
  for (const Value& item : items) {
    TP_RETURN_IF_ERROR(interp.Step());
    Value subject = item;
    if (by_attribute) {
      TP_ASSIGN_OR_RETURN(subject, GetPath(interp, item, attribute));
    }
    bool matches = false;
    if (test.empty()) {
      matches = IsTruthy(subject);
    } else {
      TP_ASSIGN_OR_RETURN(matches, ApplyTest(interp, test, subject, rest));
    }
    if (matches == keep_matching) out.push_back(item);
  }
  return Value::List(std::move(out));
}

absl::StatusOr<Value> Select(Interpreter& interp, const Value& in, const CallArgs& args) {
  return SelectOrReject(interp, in, args, false, true);
}
absl::StatusOr<Value> Reject(Interpreter& interp, const Value& in, const CallArgs& args) {
  return SelectOrReject(interp, in, args, false, false);
}
absl::StatusOr<Value> SelectAttr(Interpreter& interp, const Value& in, const CallArgs& args) {
  return SelectOrReject(interp, in, args, true, true);
}
absl::StatusOr<Value> RejectAttr(Interpreter& interp, const Value& in, const CallArgs& args) {
  return SelectOrReject(interp, in, args, true, false);
}

absl::StatusOr<Value> Replace(Interpreter& interp, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("replace", 3, {"old", "new", "count"}));
  const Value* old = args.Get(0, "old");
  const Value* repl = args.Get(1, "new");
  if (old == nullptr || repl == nullptr) return BadArgument("replace", "needs old and new");
  TP_ASSIGN_OR_RETURN(int64_t count, IntArgument("replace", args.Get(2, "count"), -1));
  TP_ASSIGN_OR_RETURN(std::string out, PyReplace(ToStr(in, interp.budget()), ToStr(*old, interp.budget()),
                                                 ToStr(*repl, interp.budget()), count,
                                                 interp.limits().max_output_bytes));
  return Value(std::move(out));
}

absl::StatusOr<Value> Reverse(Interpreter&, const Value& in, const CallArgs&) {
  if (in.is_string()) {
    std::u32string chars = DecodeUtf8(in.as_string());
    std::reverse(chars.begin(), chars.end());
    return Value(EncodeUtf8(chars));
  }
  TP_ASSIGN_OR_RETURN(ValueList items, Iterate(in));
  std::reverse(items.begin(), items.end());
  return Value::List(std::move(items));
}

absl::StatusOr<Value> Round(Interpreter&, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("round", 2, {"precision", "method"}));
  TP_ASSIGN_OR_RETURN(int64_t precision, IntArgument("round", args.Get(0, "precision"), 0));
  TP_ASSIGN_OR_RETURN(std::optional<std::string_view> method, OptionalString("round", args.Get(1, "method")));
  if (!in.is_number()) return BadArgument("round", fmt::format("expected a number, got {}", TypeName(in)));
  precision = std::clamp<int64_t>(precision, -300, 300);
  const double scale = std::pow(10.0, static_cast<double>(precision));
  if (!method || *method == "common") {
    // Python's round(): the correctly rounded decimal, ties to even; ints stay ints.
    if (in.kind() != ValueKind::kFloat) return Value(in.as_int());
    const double x = in.as_double();
    if (!std::isfinite(x)) return in;
    if (precision < 0) return Value(std::nearbyint(x / scale) * scale);
    const std::string text = fmt::format("{:.{}f}", x, precision);
    double r = 0;
    std::from_chars(text.data(), text.data() + text.size(), r);
    return Value(r);
  }
  if (*method != "floor" && *method != "ceil") return BadArgument("round", "method must be common, floor or ceil");
  const double x = in.as_double() * scale;
  return Value((*method == "floor" ? std::floor(x) : std::ceil(x)) / scale);
}

absl::StatusOr<Value> Safe(Interpreter& interp, const Value& in, const CallArgs&) {
  return Value(ToStr(in, interp.budget()));
}

absl::StatusOr<Value> Sort(Interpreter& interp, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("sort", 3, {"reverse", "case_sensitive", "attribute"}));
  const bool reverse = BoolArgument(args.Get(0, "reverse"), false);
  const bool case_sensitive = BoolArgument(args.Get(1, "case_sensitive"), false);
  const Value* attribute = args.Get(2, "attribute");
  TP_ASSIGN_OR_RETURN(ValueList items, Iterate(in));
  std::vector<std::pair<Value, Value>> keyed;
  keyed.reserve(items.size());
  for (Value& item : items) {
    Value key = item;
    if (attribute != nullptr && !attribute->is_none()) {
      TP_ASSIGN_OR_RETURN(key, GetPath(interp, item, ToStr(*attribute, interp.budget())));
    }
    keyed.emplace_back(SortKey(key, case_sensitive), std::move(item));
  }
  absl::Status error;
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    if (!error.ok()) return false;
    absl::StatusOr<int> c = Compare(a.first, b.first, interp.budget());
    if (!c.ok()) {
      error = c.status();
      return false;
    }
    return reverse ? *c > 0 : *c < 0;
  });
  TP_RETURN_IF_ERROR(error);
  ValueList out;
  out.reserve(keyed.size());
  for (auto& [key, item] : keyed) out.push_back(std::move(item));
  return Value::List(std::move(out));
}

absl::StatusOr<Value> String(Interpreter& interp, const Value& in, const CallArgs&) {
  return Value(ToStr(in, interp.budget()));
}

absl::StatusOr<Value> Sum(Interpreter& interp, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("sum", 2, {"attribute", "start"}));
  const Value* attribute = args.Get(0, "attribute");
  const Value* start = args.Get(1, "start");
  TP_ASSIGN_OR_RETURN(ValueList items, Iterate(in));
  Value total = start != nullptr ? *start : Value(int64_t{0});
  for (const Value& item : items) {
    Value v = item;
    if (attribute != nullptr && !attribute->is_none()) {
      TP_ASSIGN_OR_RETURN(v, GetPath(interp, item, ToStr(*attribute, interp.budget())));
    }
    TP_ASSIGN_OR_RETURN(total, ApplyBinary(BinaryOp::kAdd, total, v, interp.budget()));
  }
  return total;
}

// Hugging Face's tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False).
absl::StatusOr<Value> ToJson(Interpreter& interp, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("tojson", 4, {"ensure_ascii", "indent", "separators", "sort_keys"}));
  JsonDumpOptions options;
  options.ensure_ascii = BoolArgument(args.Get(0, "ensure_ascii"), false);
  options.sort_keys = BoolArgument(args.Get(3, "sort_keys"), false);
  if (const Value* indent = args.Get(1, "indent"); indent != nullptr && !indent->is_none()) {
    options.pretty = true;
    options.item_separator = ",";
    if (indent->is_string()) {
      options.indent = indent->as_string();
    } else {
      TP_ASSIGN_OR_RETURN(int64_t n, IntArgument("tojson", indent, 0));
      if (n > 1024) return BadArgument("tojson", "indent too large");
      options.indent.assign(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
    }
  }
  if (const Value* separators = args.Get(2, "separators"); separators != nullptr && !separators->is_none()) {
    if (!separators->is_list_like() || separators->as_list().size() != 2 || !separators->as_list()[0].is_string() ||
        !separators->as_list()[1].is_string()) {
      return BadArgument("tojson", "separators must be a pair of strings");
    }
    options.item_separator = separators->as_list()[0].as_string();
    options.key_separator = separators->as_list()[1].as_string();
  }
  TP_ASSIGN_OR_RETURN(std::string json, DumpJson(in, options, interp.budget()));
  return Value(std::move(json));
}

absl::StatusOr<Value> Trim(Interpreter& interp, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("trim", 1, {"chars"}));
  TP_ASSIGN_OR_RETURN(std::optional<std::string_view> chars, OptionalString("trim", args.Get(0, "chars")));
  return Value(PyStrip(ToStr(in, interp.budget()), chars, true, true));
}

absl::StatusOr<Value> Unique(Interpreter& interp, const Value& in, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("unique", 2, {"case_sensitive", "attribute"}));
  const bool case_sensitive = BoolArgument(args.Get(0, "case_sensitive"), false);
  const Value* attribute = args.Get(1, "attribute");
  TP_ASSIGN_OR_RETURN(ValueList items, Iterate(in));
  ValueList out;
  ValueList seen;
  for (const Value& item : items) {
    TP_RETURN_IF_ERROR(interp.Step());
    Value key = item;
    if (attribute != nullptr && !attribute->is_none()) {
      TP_ASSIGN_OR_RETURN(key, GetPath(interp, item, ToStr(*attribute, interp.budget())));
    }
    key = SortKey(key, case_sensitive);
    bool duplicate = false;
    for (const Value& s : seen) {
      if (Equals(s, key, interp.budget())) duplicate = true;
    }
    if (duplicate) continue;
    seen.push_back(std::move(key));
    out.push_back(item);
  }
  return Value::List(std::move(out));
}

absl::StatusOr<Value> WordCount(Interpreter& interp, const Value& in, const CallArgs&) {
  TP_ASSIGN_OR_RETURN(std::vector<std::string> words,
                      PySplit(ToStr(in, interp.budget()), std::nullopt, -1, false));
  return Value(static_cast<int64_t>(words.size()));
}

struct FilterEntry {
  std::string_view name;
  FilterFn fn;
};

constexpr FilterEntry kFilters[] = {
    {"abs", Abs},         {"attr", Attr},         {"capitalize", Capitalize},
    {"center", Center},   {"count", Length},      {"d", Default},
    {"default", Default}, {"dictsort", DictSort}, {"e", Escape},
    {"escape", Escape},   {"first", First},       {"float", Float},
    {"indent", Indent},   {"int", Int},           {"items", Items},
    {"join", Join},       {"last", Last},         {"length", Length},
    {"list", List},       {"lower", Lower},       {"map", Map},
    {"max", Max},         {"min", Min},           {"reject", Reject},
    {"rejectattr", RejectAttr}, {"replace", Replace}, {"reverse", Reverse},
    {"round", Round},     {"safe", Safe},         {"select", Select},
    {"selectattr", SelectAttr}, {"sort", Sort},   {"string", String},
    {"sum", Sum},         {"title", Title},       {"tojson", ToJson},
    {"trim", Trim},       {"unique", Unique},     {"upper", Upper},
    {"wordcount", WordCount},
};

FilterFn FindFilter(std::string_view name) {
  for (const FilterEntry& entry : kFilters) {
    if (entry.name == name) return entry.fn;
  }
  return nullptr;
}

}  // namespace

bool IsKnownFilter(std::string_view name) { return FindFilter(name) != nullptr; }

absl::StatusOr<Value> ApplyFilter(Interpreter& interpreter, std::string_view name, const Value& input,
                                  const CallArgs& args) {
  const FilterFn fn = FindFilter(name);
  if (fn == nullptr) return absl::InvalidArgumentError(fmt::format("no filter named '{}'", name));
  // Only these accept undefined input (jinja2's Undefined is empty and iterable).
  static constexpr std::string_view kAcceptUndefined[] = {
      "default", "d", "length", "count", "list", "first", "last", "join", "string", "trim",
      "items", "safe", "lower", "upper", "capitalize", "title", "e", "escape", "replace",
      "indent", "select", "reject", "selectattr", "rejectattr", "map", "unique", "sort",
      "reverse", "wordcount", "center", "int", "float", "min", "max", "sum", "dictsort"};
  if (input.is_undefined() &&
      std::find(std::begin(kAcceptUndefined), std::end(kAcceptUndefined), name) == std::end(kAcceptUndefined)) {
    return RequireUsable(name, input);
  }
  return fn(interpreter, input, args);
}

}  // namespace triplane::engine::chat::jinja
