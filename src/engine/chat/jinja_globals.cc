// Global functions of the chat-template environment and loop.cycle.

#include <fmt/format.h>

#include <ctime>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "engine/chat/jinja_builtins.h"
#include "engine/chat/jinja_interpreter.h"

namespace triplane::engine::chat::jinja {
namespace {

// Longest list range() builds.
constexpr int64_t kMaxRangeSize = int64_t{1} << 20;

using GlobalFn = absl::StatusOr<Value> (*)(Interpreter&, const CallArgs&);

class GlobalFunction : public Callable {
 public:
  GlobalFunction(std::string_view name, GlobalFn fn) : name_(name), fn_(fn) {}
  std::string_view name() const override { return name_; }
  absl::StatusOr<Value> Call(Interpreter& interpreter, CallArgs args) const override {
    return fn_(interpreter, args);
  }

 private:
  std::string_view name_;
  GlobalFn fn_;
};

absl::StatusOr<Value> Range(Interpreter&, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("range", 3, {}));
  if (args.positional.empty()) return absl::InvalidArgumentError("range expected at least 1 argument");
  int64_t bounds[3] = {0, 0, 1};
  for (size_t i = 0; i < args.positional.size(); ++i) {
    const Value& v = args.positional[i];
    if (v.kind() != ValueKind::kInt && v.kind() != ValueKind::kBool) {
      return absl::InvalidArgumentError(fmt::format("range() argument must be int, not {}", TypeName(v)));
    }
  }
  if (args.positional.size() == 1) {
    bounds[1] = args.positional[0].as_int();
  } else {
    bounds[0] = args.positional[0].as_int();
    bounds[1] = args.positional[1].as_int();
    if (args.positional.size() == 3) bounds[2] = args.positional[2].as_int();
  }
  const auto [start, stop, step] = bounds;
  if (step == 0) return absl::InvalidArgumentError("range() arg 3 must not be zero");
  // Count in unsigned arithmetic so that extreme bounds cannot overflow.
  uint64_t count = 0;
  if (step > 0 && start < stop) {
    count = (static_cast<uint64_t>(stop) - static_cast<uint64_t>(start) - 1) / static_cast<uint64_t>(step) + 1;
  } else if (step < 0 && start > stop) {
    const uint64_t magnitude = static_cast<uint64_t>(-(step + 1)) + 1;
    count = (static_cast<uint64_t>(start) - static_cast<uint64_t>(stop) - 1) / magnitude + 1;
  }
  if (count > static_cast<uint64_t>(kMaxRangeSize)) {
    return absl::InvalidArgumentError(fmt::format("range() of more than {} items", kMaxRangeSize));
  }
  ValueList items;
  items.reserve(count);
  int64_t value = start;
  for (uint64_t i = 0; i < count; ++i) {
    items.emplace_back(value);
    if (i + 1 < count) value += step;  // stays between start and stop
  }
  return Value::List(std::move(items));
}

// dict(**kwargs) or dict(mapping, **kwargs).
absl::StatusOr<Value> Dict(Interpreter&, const CallArgs& args) {
  if (args.positional.size() > 1) return absl::InvalidArgumentError("dict expected at most 1 positional argument");
  ValueDict dict;
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.is_dict()) {
      dict = source.as_dict();
    } else if (source.is_list_like()) {
      for (const Value& pair : source.as_list()) {
        if (!pair.is_list_like() || pair.as_list().size() != 2) {
          return absl::InvalidArgumentError("dict() sequence items must be pairs");
        }
        dict.Set(pair.as_list()[0], pair.as_list()[1]);
      }
    } else {
      return absl::InvalidArgumentError(fmt::format("dict() cannot convert {}", TypeName(source)));
    }
  }
  for (const auto& [name, value] : args.keyword) dict.Set(Value(name), value);
  return Value::Dict(std::move(dict));
}

// namespace(**kwargs) or namespace(mapping, **kwargs).
absl::StatusOr<Value> Namespace(Interpreter& interp, const CallArgs& args) {
  TP_ASSIGN_OR_RETURN(Value dict, Dict(interp, args));
  for (const auto& [key, value] : dict.as_dict().entries()) {
    if (value.holds_namespace()) return absl::InvalidArgumentError("a namespace cannot be stored in a namespace");
  }
  return Value::Namespace(dict.as_dict());
}

absl::StatusOr<Value> RaiseException(Interpreter& interp, const CallArgs& args) {
  std::string message;
  if (!args.positional.empty()) message = ToStr(args.positional[0], interp.budget());
  return absl::InvalidArgumentError(fmt::format("raise_exception: {}", message));
}

absl::StatusOr<Value> StrftimeNow(Interpreter& interp, const CallArgs& args) {
  TP_RETURN_IF_ERROR(args.Check("strftime_now", 1, {}));
  if (args.positional.empty() || !args.positional[0].is_string()) {
    return absl::InvalidArgumentError("strftime_now() needs a format string");
  }
  const std::string& format = args.positional[0].as_string();
  if (format.empty()) return Value("");
  const std::time_t t = std::chrono::system_clock::to_time_t(interp.now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::string out(256 + 8 * format.size(), '\0');
  const size_t n = std::strftime(out.data(), out.size(), format.c_str(), &tm);
  if (n == 0) return absl::InvalidArgumentError("strftime_now(): result too long or empty");
  out.resize(n);
  return Value(std::move(out));
}

class LoopCycle : public Callable {
 public:
  explicit LoopCycle(int64_t index0) : index0_(index0) {}
  std::string_view name() const override { return "cycle"; }
  absl::StatusOr<Value> Call(Interpreter&, CallArgs args) const override {
    if (args.positional.empty()) return absl::InvalidArgumentError("no items for cycling given");
    return args.positional[static_cast<size_t>(index0_) % args.positional.size()];
  }

 private:
  int64_t index0_;
};

struct GlobalEntry {
  std::string_view name;
  GlobalFn fn;
};

constexpr GlobalEntry kGlobals[] = {
    {"range", Range},
    {"dict", Dict},
    {"namespace", Namespace},
    {"raise_exception", RaiseException},
    {"strftime_now", StrftimeNow},
};

}  // namespace

Value FindGlobal(std::string_view name) {
  for (const GlobalEntry& entry : kGlobals) {
    if (entry.name == name) return Value::Function(std::make_shared<GlobalFunction>(entry.name, entry.fn));
  }
  return Value();
}

Value MakeLoopCycle(int64_t index0) { return Value::Function(std::make_shared<LoopCycle>(index0)); }

}  // namespace triplane::engine::chat::jinja
