#include "engine/chat/jinja_operators.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "engine/tokenizer/unicode.h"

namespace triplane::engine::chat::jinja {
namespace {

std::string_view OperatorText(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd: return "+";
    case BinaryOp::kSub: return "-";
    case BinaryOp::kMul: return "*";
    case BinaryOp::kDiv: return "/";
    case BinaryOp::kFloorDiv: return "//";
    case BinaryOp::kMod: return "%";
    case BinaryOp::kPow: return "**";
    case BinaryOp::kConcat: return "~";
    case BinaryOp::kAnd: return "and";
    case BinaryOp::kOr: return "or";
  }
  return "?";
}

absl::Status Unsupported(BinaryOp op, const Value& a, const Value& b) {
  return absl::InvalidArgumentError(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'",
                                                OperatorText(op), TypeName(a), TypeName(b)));
}

absl::Status UndefinedOperand(const Value& v) {
  const std::string_view hint = v.undefined_hint();
  return absl::InvalidArgumentError(hint.empty() ? std::string("undefined value used in an operation")
                                                 : std::string(hint));
}

absl::StatusOr<Value> IntArithmetic(BinaryOp op, int64_t x, int64_t y) {
  int64_t r = 0;
  switch (op) {
    case BinaryOp::kAdd:
      if (__builtin_add_overflow(x, y, &r)) break;
      return Value(r);
    case BinaryOp::kSub:
      if (__builtin_sub_overflow(x, y, &r)) break;
      return Value(r);
    case BinaryOp::kMul:
      if (__builtin_mul_overflow(x, y, &r)) break;
      return Value(r);
    case BinaryOp::kDiv:
      if (y == 0) return absl::InvalidArgumentError("division by zero");
      return Value(static_cast<double>(x) / static_cast<double>(y));
    case BinaryOp::kFloorDiv:
    case BinaryOp::kMod: {
      if (y == 0) return absl::InvalidArgumentError("integer division or modulo by zero");
      if (x == std::numeric_limits<int64_t>::min() && y == -1) break;
      int64_t q = x / y;
      int64_t m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors toward negative infinity
        --q;
        m += y;
      }
      return Value(op == BinaryOp::kFloorDiv ? q : m);
    }
    case BinaryOp::kPow: {
      if (y < 0) return Value(std::pow(static_cast<double>(x), static_cast<double>(y)));
      int64_t result = 1;
      int64_t base = x;
      int64_t e = y;
      bool overflow = false;
      while (e > 0 && !overflow) {
        if (e & 1) overflow |= __builtin_mul_overflow(result, base, &result);
        e >>= 1;
        if (e > 0) overflow |= __builtin_mul_overflow(base, base, &base);
      }
      if (overflow) break;
      return Value(result);
    }
    default:
      break;
  }
  return absl::InvalidArgumentError("integer overflow");
}

absl::StatusOr<Value> FloatArithmetic(BinaryOp op, double x, double y) {
  switch (op) {
    case BinaryOp::kAdd: return Value(x + y);
    case BinaryOp::kSub: return Value(x - y);
    case BinaryOp::kMul: return Value(x * y);
    case BinaryOp::kDiv:
      if (y == 0) return absl::InvalidArgumentError("float division by zero");
      return Value(x / y);
    case BinaryOp::kFloorDiv:
      if (y == 0) return absl::InvalidArgumentError("float floor division by zero");
      return Value(std::floor(x / y));
    case BinaryOp::kMod: {
      if (y == 0) return absl::InvalidArgumentError("float modulo");
      double m = std::fmod(x, y);
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value(m);
    }
    case BinaryOp::kPow: return Value(std::pow(x, y));
    default:
      return absl::InvalidArgumentError("bad float operator");
  }
}

// s * n (or list * n) within `max_size`.
absl::StatusOr<Value> Repeat(const Value& seq, int64_t n, size_t max_size) {
  if (n <= 0) return seq.is_string() ? Value("") : Value::List({});
  const size_t unit = seq.is_string() ? seq.as_string().size() : seq.as_list().size();
  if (unit != 0 && static_cast<uint64_t>(n) > max_size / unit) {
    return absl::InvalidArgumentError(fmt::format("repetition result over {} bytes", max_size));
  }
  if (seq.is_string()) {
    std::string out;
    out.reserve(unit * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += seq.as_string();
    return Value(std::move(out));
  }
  ValueList out;
  out.reserve(unit * static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.as_list().begin(), seq.as_list().end());
  return seq.kind() == ValueKind::kTuple ? Value::Tuple(std::move(out)) : Value::List(std::move(out));
}

bool IsInteger(const Value& v) { return v.kind() == ValueKind::kInt || v.kind() == ValueKind::kBool; }

}  // namespace

absl::StatusOr<Value> ApplyBinary(BinaryOp op, const Value& a, const Value& b, WorkBudget& budget) {
  const size_t max_size = budget.max_string_bytes();
  if (op == BinaryOp::kConcat) {
    std::string out = ToStr(a, budget);
    AppendStr(b, out, budget);
    if (out.size() > max_size) return absl::InvalidArgumentError(fmt::format("string over {} bytes", max_size));
    return Value(std::move(out));
  }
  if (a.is_undefined()) return UndefinedOperand(a);
  if (b.is_undefined()) return UndefinedOperand(b);
  if (a.is_number() && b.is_number()) {
    if (IsInteger(a) && IsInteger(b)) return IntArithmetic(op, a.as_int(), b.as_int());
    return FloatArithmetic(op, a.as_double(), b.as_double());
  }
  if (op == BinaryOp::kAdd) {
    if (a.is_string() && b.is_string()) {
      if (a.as_string().size() + b.as_string().size() > max_size) {
        return absl::InvalidArgumentError(fmt::format("string over {} bytes", max_size));
      }
      std::string out;
      out.reserve(a.as_string().size() + b.as_string().size());
      out += a.as_string();
      out += b.as_string();
      return Value(std::move(out));
    }
    if (a.is_list_like() && a.kind() == b.kind()) {
      if (a.as_list().size() + b.as_list().size() > max_size) {
        return absl::InvalidArgumentError(fmt::format("list over {} items", max_size));
      }
      ValueList out = a.as_list();
      out.insert(out.end(), b.as_list().begin(), b.as_list().end());
      return a.kind() == ValueKind::kTuple ? Value::Tuple(std::move(out)) : Value::List(std::move(out));
    }
  }
  if (op == BinaryOp::kMul) {
    if ((a.is_string() || a.is_list_like()) && IsInteger(b)) return Repeat(a, b.as_int(), max_size);
    if (IsInteger(a) && (b.is_string() || b.is_list_like())) return Repeat(b, a.as_int(), max_size);
  }
  if (op == BinaryOp::kMod && a.is_string()) {
    return absl::InvalidArgumentError("printf-style string formatting with % is not supported");
  }
  return Unsupported(op, a, b);
}

absl::StatusOr<bool> Contains(const Value& container, const Value& item, WorkBudget& budget) {
  switch (container.kind()) {
    case ValueKind::kUndefined:
      return false;
    case ValueKind::kString:
      if (!item.is_string()) {
        return absl::InvalidArgumentError(
            fmt::format("'in <string>' requires string as left operand, not {}", TypeName(item)));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case ValueKind::kList:
    case ValueKind::kTuple:
      for (const Value& v : container.as_list()) {
        if (Equals(v, item, budget)) return true;
      }
      return false;
    case ValueKind::kDict:
      return container.as_dict().Find(item) != nullptr;
    default:
      return absl::InvalidArgumentError(
          fmt::format("argument of type '{}' is not iterable", TypeName(container)));
  }
}

absl::StatusOr<Value> Slice(const Value& container, const Value& start, const Value& stop,
                            const Value& step) {
  auto bound = [](const Value& v, std::string_view what) -> absl::StatusOr<std::optional<int64_t>> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!IsInteger(v)) {
      return absl::InvalidArgumentError(
          fmt::format("slice {} must be an integer or None, not {}", what, TypeName(v)));
    }
    return v.as_int();
  };
  absl::StatusOr<std::optional<int64_t>> start_index = bound(start, "start");
  if (!start_index.ok()) return start_index.status();
  absl::StatusOr<std::optional<int64_t>> stop_index = bound(stop, "stop");
  if (!stop_index.ok()) return stop_index.status();
  absl::StatusOr<std::optional<int64_t>> step_value = bound(step, "step");
  if (!step_value.ok()) return step_value.status();
  const int64_t stride = step_value->value_or(1);
  if (stride == 0) return absl::InvalidArgumentError("slice step cannot be zero");

  std::u32string chars;
  int64_t length = 0;
  if (container.is_string()) {
    chars = DecodeUtf8(container.as_string());
    length = static_cast<int64_t>(chars.size());
  } else if (container.is_list_like()) {
    length = static_cast<int64_t>(container.as_list().size());
  } else {
    return Value::Undefined("object is not subscriptable with a slice");
  }
  // Python's PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> index, int64_t fallback) {
    if (!index) return fallback;
    int64_t i = *index;
    if (i < 0) {
      i += length;
      if (i < 0) i = stride < 0 ? -1 : 0;
    } else if (i >= length) {
      i = stride < 0 ? length - 1 : length;
    }
    return i;
  };
  const int64_t first = adjust(*start_index, stride < 0 ? length - 1 : 0);
  const int64_t last = adjust(*stop_index, stride < 0 ? -1 : length);
  std::u32string text;
  ValueList items;
  for (int64_t i = first; stride > 0 ? i < last : i > last; i += stride) {
    if (container.is_string()) {
      text.push_back(chars[static_cast<size_t>(i)]);
    } else {
      items.push_back(container.as_list()[static_cast<size_t>(i)]);
    }
    if ((stride > 0 && i > std::numeric_limits<int64_t>::max() - stride) ||
        (stride < 0 && i < std::numeric_limits<int64_t>::min() - stride)) {
      break;
    }
  }
  if (container.is_string()) return Value(EncodeUtf8(text));
  return container.kind() == ValueKind::kTuple ? Value::Tuple(std::move(items)) : Value::List(std::move(items));
}

absl::StatusOr<ValueList> Iterate(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return ValueList{};
    case ValueKind::kList:
    case ValueKind::kTuple:
      return v.as_list();
    case ValueKind::kDict: {
      ValueList keys;
      keys.reserve(v.as_dict().size());
      for (const auto& [key, value] : v.as_dict().entries()) keys.push_back(key);
      return keys;
    }
    case ValueKind::kString: {
      ValueList chars;
      std::string one;
      for (char32_t cp : DecodeUtf8(v.as_string())) {
        one.clear();
        AppendUtf8(cp, one);
        chars.emplace_back(one);
      }
      return chars;
    }
    default:
      return absl::InvalidArgumentError(fmt::format("'{}' object is not iterable", TypeName(v)));
  }
}

}  // namespace triplane::engine::chat::jinja
