#include "engine/chat/jinja_value.h"

#include <fmt/format.h>
#include <unicode/uchar.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "engine/chat/jinja_callable.h"
#include "engine/tokenizer/unicode.h"

namespace triplane::engine::chat::jinja {

Value Value::Undefined(std::string hint) {
  Value v;
  if (!hint.empty()) v.data_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::None() {
  Value v;
  v.kind_ = ValueKind::kNone;
  return v;
}

Value Value::List(ValueList items) {
  Value v;
  v.kind_ = ValueKind::kList;
  v.data_ = std::make_shared<ValueList>(std::move(items));
  v.Measure();
  return v;
}

Value Value::Tuple(ValueList items) {
  Value v = List(std::move(items));
  v.kind_ = ValueKind::kTuple;
  return v;
}

Value Value::Dict(ValueDict dict) {
  Value v;
  v.kind_ = ValueKind::kDict;
  v.data_ = std::make_shared<ValueDict>(std::move(dict));
  v.Measure();
  return v;
}

Value Value::Namespace(ValueDict attributes) {
  Value v = Dict(std::move(attributes));
  v.kind_ = ValueKind::kNamespace;
  v.holds_namespace_ = true;
  return v;
}

void Value::Measure() {
  int depth = 0;
  bool holds_namespace = false;
  auto visit = [&](const Value& item) {
    depth = std::max(depth, item.depth());
    holds_namespace = holds_namespace || item.holds_namespace();
  };
  if (std::holds_alternative<ListPtr>(data_)) {
    for (const Value& item : *std::get<ListPtr>(data_)) visit(item);
  } else if (std::holds_alternative<DictPtr>(data_)) {
    for (const auto& [key, item] : std::get<DictPtr>(data_)->entries()) visit(item);
  }
  depth_ = static_cast<uint16_t>(std::min(depth + 1, 0xffff));
  holds_namespace_ = holds_namespace;
}

int Value::depth() const {
  if (kind_ != ValueKind::kNamespace) return depth_;
  // Attributes change after construction; they hold no namespace, so this is shallow.
  int depth = 0;
  for (const auto& [key, item] : as_dict().entries()) depth = std::max(depth, item.depth());
  return depth + 1;
}

Value Value::Function(std::shared_ptr<const Callable> callable) {
  Value v;
  v.kind_ = ValueKind::kCallable;
  v.data_ = std::move(callable);
  return v;
}

int64_t Value::as_int() const {
  return kind_ == ValueKind::kBool ? static_cast<int64_t>(std::get<bool>(data_))
                                   : std::get<int64_t>(data_);
}

double Value::as_double() const {
  switch (kind_) {
    case ValueKind::kBool:
      return std::get<bool>(data_) ? 1.0 : 0.0;
    case ValueKind::kInt:
      return static_cast<double>(std::get<int64_t>(data_));
    default:
      return std::get<double>(data_);
  }
}

std::string_view Value::undefined_hint() const {
  if (kind_ != ValueKind::kUndefined || !std::holds_alternative<StringPtr>(data_)) return {};
  return *std::get<StringPtr>(data_);
}

bool Value::SameObject(const Value& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case ValueKind::kList:
    case ValueKind::kTuple:
      return std::get<ListPtr>(data_) == std::get<ListPtr>(other.data_);
    case ValueKind::kDict:
    case ValueKind::kNamespace:
      return std::get<DictPtr>(data_) == std::get<DictPtr>(other.data_);
    case ValueKind::kCallable:
      return std::get<CallablePtr>(data_) == std::get<CallablePtr>(other.data_);
    default:
      return KeyEquals(*this, other);
  }
}

const Value* ValueDict::Find(const Value& key) const {
  for (const Entry& entry : entries_) {
    if (KeyEquals(entry.first, key)) return &entry.second;
  }
  return nullptr;
}

const Value* ValueDict::Find(std::string_view key) const {
  for (const Entry& entry : entries_) {
    if (entry.first.is_string() && entry.first.as_string() == key) return &entry.second;
  }
  return nullptr;
}

void ValueDict::Set(Value key, Value value) {
  for (Entry& entry : entries_) {
    if (KeyEquals(entry.first, key)) {
      entry.second = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

bool IsTruthy(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
    case ValueKind::kNone:
      return false;
    case ValueKind::kBool:
      return v.as_bool();
    case ValueKind::kInt:
      return v.as_int() != 0;
    case ValueKind::kFloat:
      return v.as_double() != 0.0;
    case ValueKind::kString:
      return !v.as_string().empty();
    case ValueKind::kList:
    case ValueKind::kTuple:
      return !v.as_list().empty();
    case ValueKind::kDict:
      return !v.as_dict().empty();
    case ValueKind::kNamespace:
    case ValueKind::kCallable:
      return true;
  }
  return false;
}

std::string_view TypeName(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return "Undefined";
    case ValueKind::kNone:
      return "NoneType";
    case ValueKind::kBool:
      return "bool";
    case ValueKind::kInt:
      return "int";
    case ValueKind::kFloat:
      return "float";
    case ValueKind::kString:
      return "str";
    case ValueKind::kList:
      return "list";
    case ValueKind::kTuple:
      return "tuple";
    case ValueKind::kDict:
      return "dict";
    case ValueKind::kNamespace:
      return "Namespace";
    case ValueKind::kCallable:
      return "function";
  }
  return "object";
}

std::string FormatPythonFloat(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // Shortest round-trip digits in scientific form, then Python's layout: positional for
  // decimal exponents in [-4, 16), scientific otherwise.
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  const std::string_view sci(buf, static_cast<size_t>(result.ptr - buf));
  const size_t e_pos = sci.find('e');
  std::string_view mantissa = sci.substr(0, e_pos);
  std::string_view exponent_text = sci.substr(e_pos + 1);
  if (!exponent_text.empty() && exponent_text[0] == '+') exponent_text.remove_prefix(1);
  int exponent = 0;
  std::from_chars(exponent_text.data(), exponent_text.data() + exponent_text.size(), exponent);
  std::string sign;
  if (!mantissa.empty() && mantissa[0] == '-') {
    sign = "-";
    mantissa.remove_prefix(1);
  }
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits.push_back(c);
  }
  const int decpt = exponent + 1;
  const int ndigits = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return sign + "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    if (decpt >= ndigits) return sign + digits + std::string(static_cast<size_t>(decpt - ndigits), '0') + ".0";
    return sign + digits.substr(0, static_cast<size_t>(decpt)) + "." +
           digits.substr(static_cast<size_t>(decpt));
  }
  std::string out = sign + digits.substr(0, 1);
  if (ndigits > 1) out += "." + digits.substr(1);
  out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out;
}

namespace {

// Python's str.isprintable() for a non-ASCII code point: everything but the categories
// Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs.
bool IsPrintable(char32_t cp) {
  switch (u_charType(static_cast<UChar32>(cp))) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
    case U_SPACE_SEPARATOR:
      return false;
    default:
      return true;
  }
}

void AppendStringRepr(std::string_view s, std::string& out) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  out.push_back(quote);
  for (char32_t cp : DecodeUtf8(s)) {
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp < 0x20 || cp == 0x7f) {
      out += fmt::format("\\x{:02x}", static_cast<uint32_t>(cp));
    } else if (cp < 0x7f || IsPrintable(cp)) {
      AppendUtf8(cp, out);
    } else if (cp <= 0xff) {
      out += fmt::format("\\x{:02x}", static_cast<uint32_t>(cp));
    } else if (cp <= 0xffff) {
      out += fmt::format("\\u{:04x}", static_cast<uint32_t>(cp));
    } else {
      out += fmt::format("\\U{:08x}", static_cast<uint32_t>(cp));
    }
  }
  out.push_back(quote);
}

// Charges one visit of `v` (strings by size); false when the walk must stop.
bool Visit(const Value& v, const std::string& out, WorkBudget& budget) {
  const int64_t units = 1 + (v.is_string() ? static_cast<int64_t>(v.as_string().size() / 64) : 0);
  if (!budget.Spend(units)) return false;
  if (out.size() > budget.max_string_bytes()) {
    budget.Exhaust();
    return false;
  }
  return true;
}

void AppendRepr(const Value& v, std::string& out, WorkBudget& budget);

void AppendItemsRepr(const ValueList& items, std::string& out, WorkBudget& budget) {
  for (size_t i = 0; i < items.size() && !budget.exhausted(); ++i) {
    if (i > 0) out += ", ";
    AppendRepr(items[i], out, budget);
  }
}

void AppendDictRepr(const ValueDict& dict, std::string& out, WorkBudget& budget) {
  out.push_back('{');
  bool first = true;
  for (const auto& [key, value] : dict.entries()) {
    if (budget.exhausted()) return;
    if (!first) out += ", ";
    first = false;
    AppendRepr(key, out, budget);
    out += ": ";
    AppendRepr(value, out, budget);
  }
  out.push_back('}');
}

void AppendRepr(const Value& v, std::string& out, WorkBudget& budget) {
  if (!Visit(v, out, budget)) return;
  switch (v.kind()) {
    case ValueKind::kUndefined:
      out += "Undefined";
      return;
    case ValueKind::kString:
      AppendStringRepr(v.as_string(), out);
      return;
    case ValueKind::kList:
      out.push_back('[');
      AppendItemsRepr(v.as_list(), out, budget);
      out.push_back(']');
      return;
    case ValueKind::kTuple:
      out.push_back('(');
      AppendItemsRepr(v.as_list(), out, budget);
      if (v.as_list().size() == 1) out.push_back(',');
      out.push_back(')');
      return;
    case ValueKind::kDict:
      AppendDictRepr(v.as_dict(), out, budget);
      return;
    case ValueKind::kNamespace:
      out += "<Namespace ";
      AppendDictRepr(v.as_dict(), out, budget);
      out.push_back('>');
      return;
    default:
      AppendStr(v, out, budget);
      return;
  }
}

}  // namespace

void AppendStr(const Value& v, std::string& out, WorkBudget& budget) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return;
    case ValueKind::kNone:
      out += "None";
      return;
    case ValueKind::kBool:
      out += v.as_bool() ? "True" : "False";
      return;
    case ValueKind::kInt:
      out += fmt::format("{}", v.as_int());
      return;
    case ValueKind::kFloat:
      out += FormatPythonFloat(v.as_double());
      return;
    case ValueKind::kString:
      if (!Visit(v, out, budget)) return;
      out += v.as_string();
      return;
    case ValueKind::kCallable:
      out += fmt::format("<function {}>", v.as_callable().name());
      return;
    default:
      AppendRepr(v, out, budget);
      return;
  }
}

std::string ToStr(const Value& v, WorkBudget& budget) {
  if (v.is_string()) return v.as_string();
  std::string out;
  AppendStr(v, out, budget);
  return out;
}

std::string Repr(const Value& v, WorkBudget& budget) {
  std::string out;
  AppendRepr(v, out, budget);
  return out;
}

bool KeyEquals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() != ValueKind::kFloat && b.kind() != ValueKind::kFloat) return a.as_int() == b.as_int();
    return a.as_double() == b.as_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case ValueKind::kUndefined:
    case ValueKind::kNone:
      return true;
    case ValueKind::kString:
      return a.as_string() == b.as_string();
    default:
      return a.SameObject(b);
  }
}

bool Equals(const Value& a, const Value& b, WorkBudget& budget) {
  if (!budget.Spend(1)) return false;
  if (a.is_list_like() && b.is_list_like()) {
    if (a.kind() != b.kind()) return false;
    if (a.SameObject(b)) return true;
    const ValueList& x = a.as_list();
    const ValueList& y = b.as_list();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (!Equals(x[i], y[i], budget)) return false;
    }
    return true;
  }
  if (a.is_dict() && b.is_dict()) {
    if (a.SameObject(b)) return true;
    const ValueDict& x = a.as_dict();
    const ValueDict& y = b.as_dict();
    if (x.size() != y.size()) return false;
    for (const auto& [key, value] : x.entries()) {
      const Value* other = y.Find(key);
      if (other == nullptr || !Equals(value, *other, budget)) return false;
    }
    return true;
  }
  if (a.is_string() && b.is_string() && !budget.Spend(static_cast<int64_t>(a.as_string().size() / 64))) {
    return false;
  }
  return KeyEquals(a, b);
}

absl::StatusOr<int> Compare(const Value& a, const Value& b, WorkBudget& budget) {
  if (!budget.Spend(1)) return absl::InvalidArgumentError("comparison exceeded the work limit");
  if (a.is_number() && b.is_number()) {
    if (a.kind() != ValueKind::kFloat && b.kind() != ValueKind::kFloat) {
      return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
    }
    const double x = a.as_double();
    const double y = b.as_double();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    // UTF-8 byte order is code point order.
    const int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list_like() && b.is_list_like() && a.kind() == b.kind()) {
    const ValueList& x = a.as_list();
    const ValueList& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (Equals(x[i], y[i], budget)) continue;
      return Compare(x[i], y[i], budget);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  return absl::InvalidArgumentError(fmt::format("'<' not supported between instances of '{}' and '{}'",
                                                TypeName(a), TypeName(b)));
}

namespace {

void AppendJsonString(std::string_view s, bool ensure_ascii, std::string& out) {
  out.push_back('"');
  for (char32_t cp : DecodeUtf8(s)) {
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (cp < 0x20 || (ensure_ascii && cp >= 0x7f)) {
      if (cp > 0xffff) {
        const uint32_t v = static_cast<uint32_t>(cp) - 0x10000;
        out += fmt::format("\\u{:04x}\\u{:04x}", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
      } else {
        out += fmt::format("\\u{:04x}", static_cast<uint32_t>(cp));
      }
    } else {
      AppendUtf8(cp, out);
    }
  }
  out.push_back('"');
}

std::string JsonFloat(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return FormatPythonFloat(d);
}

absl::Status AppendJson(const Value& v, const JsonDumpOptions& options, int depth, WorkBudget& budget,
                        std::string& out);

void AppendNewline(const JsonDumpOptions& options, int level, std::string& out) {
  out.push_back('\n');
  for (int i = 0; i < level; ++i) out += options.indent;
}

absl::StatusOr<std::string> JsonKey(const Value& key) {
  switch (key.kind()) {
    case ValueKind::kString:
      return key.as_string();
    case ValueKind::kNone:
      return std::string("null");
    case ValueKind::kBool:
      return std::string(key.as_bool() ? "true" : "false");
    case ValueKind::kInt:
      return fmt::format("{}", key.as_int());
    case ValueKind::kFloat:
      return JsonFloat(key.as_double());
    default:
      return absl::InvalidArgumentError(
          fmt::format("keys must be str, int, float, bool or None, not {}", TypeName(key)));
  }
}

absl::Status AppendJsonDict(const ValueDict& dict, const JsonDumpOptions& options, int depth,
                            WorkBudget& budget, std::string& out) {
  if (dict.empty()) {
    out += "{}";
    return absl::OkStatus();
  }
  std::vector<std::pair<std::string, const Value*>> items;
  items.reserve(dict.size());
  for (const auto& [key, value] : dict.entries()) {
    absl::StatusOr<std::string> text = JsonKey(key);
    if (!text.ok()) return text.status();
    items.emplace_back(*std::move(text), &value);
  }
  if (options.sort_keys) {
    std::stable_sort(items.begin(), items.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  out.push_back('{');
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += options.item_separator;
    if (options.pretty) AppendNewline(options, depth + 1, out);
    AppendJsonString(items[i].first, options.ensure_ascii, out);
    out += options.key_separator;
    absl::Status status = AppendJson(*items[i].second, options, depth + 1, budget, out);
    if (!status.ok()) return status;
  }
  if (options.pretty) AppendNewline(options, depth, out);
  out.push_back('}');
  return absl::OkStatus();
}

absl::Status AppendJson(const Value& v, const JsonDumpOptions& options, int depth, WorkBudget& budget,
                        std::string& out) {
  if (!Visit(v, out, budget)) return absl::InvalidArgumentError("tojson exceeded the work or size limit");
  switch (v.kind()) {
    case ValueKind::kNone:
      out += "null";
      return absl::OkStatus();
    case ValueKind::kBool:
      out += v.as_bool() ? "true" : "false";
      return absl::OkStatus();
    case ValueKind::kInt:
      out += fmt::format("{}", v.as_int());
      return absl::OkStatus();
    case ValueKind::kFloat:
      out += JsonFloat(v.as_double());
      return absl::OkStatus();
    case ValueKind::kString:
      AppendJsonString(v.as_string(), options.ensure_ascii, out);
      return absl::OkStatus();
    case ValueKind::kList:
    case ValueKind::kTuple: {
      const ValueList& items = v.as_list();
      if (items.empty()) {
        out += "[]";
        return absl::OkStatus();
      }
      out.push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += options.item_separator;
        if (options.pretty) AppendNewline(options, depth + 1, out);
        absl::Status status = AppendJson(items[i], options, depth + 1, budget, out);
        if (!status.ok()) return status;
      }
      if (options.pretty) AppendNewline(options, depth, out);
      out.push_back(']');
      return absl::OkStatus();
    }
    case ValueKind::kDict:
      return AppendJsonDict(v.as_dict(), options, depth, budget, out);
    default:
      return absl::InvalidArgumentError(
          fmt::format("Object of type {} is not JSON serializable", TypeName(v)));
  }
}

absl::StatusOr<Value> FromJsonAt(const nlohmann::json& json, int depth) {
  if (depth > kMaxValueDepth) {
    return absl::InvalidArgumentError(fmt::format("JSON nested deeper than {}", kMaxValueDepth));
  }
  switch (json.type()) {
    case nlohmann::json::value_t::boolean:
      return Value(json.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value(json.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = json.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Value(static_cast<int64_t>(u));
      }
      return Value(static_cast<double>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value(json.get<double>());
    case nlohmann::json::value_t::string:
      return Value(json.get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      ValueList items;
      items.reserve(json.size());
      for (const nlohmann::json& item : json) {
        absl::StatusOr<Value> v = FromJsonAt(item, depth + 1);
        if (!v.ok()) return v.status();
        items.push_back(*std::move(v));
      }
      return Value::List(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      ValueDict dict;
      for (const auto& [key, value] : json.items()) {
        absl::StatusOr<Value> v = FromJsonAt(value, depth + 1);
        if (!v.ok()) return v.status();
        dict.Set(Value(key), *std::move(v));
      }
      return Value::Dict(std::move(dict));
    }
    default:
      return Value::None();
  }
}

}  // namespace

absl::StatusOr<std::string> DumpJson(const Value& v, const JsonDumpOptions& options, WorkBudget& budget) {
  std::string out;
  absl::Status status = AppendJson(v, options, 0, budget, out);
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<Value> FromJson(const nlohmann::json& json) { return FromJsonAt(json, 0); }

std::u32string DecodeUtf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    const Utf8Sequence seq = ReadUtf8(s, pos);
    out.push_back(seq.kind == Utf8Sequence::Kind::kValid ? seq.cp : kReplacementChar);
    pos += std::max<size_t>(seq.size, 1);
  }
  return out;
}

std::string EncodeUtf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) AppendUtf8(cp, out);
  return out;
}

size_t CodePointCount(std::string_view s) {
  size_t count = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++count;
  }
  return count;
}

bool IsPythonSpace(char32_t cp) {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20);
  return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

}  // namespace triplane::engine::chat::jinja
