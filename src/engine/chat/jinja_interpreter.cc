#include "engine/chat/jinja_interpreter.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <memory>

#include "common/status_macros.h"
#include "common/strings.h"
#include "engine/chat/jinja_builtins.h"
#include "engine/chat/jinja_lexer.h"
#include "engine/chat/jinja_operators.h"

namespace triplane::engine::chat::jinja {

// A {% macro %} as a callable value. Holds only the (immutable, shared) statement.
class MacroCallable : public Callable {
 public:
  explicit MacroCallable(const MacroStmt& macro) : macro_(macro) {}
  std::string_view name() const override { return macro_.name; }
  absl::StatusOr<Value> Call(Interpreter& interpreter, CallArgs args) const override {
    return interpreter.CallMacro(macro_, std::move(args));
  }

 private:
  const MacroStmt& macro_;
};

namespace {

// Counts nested Eval/Exec calls; the caller checks the depth after constructing it.
class DepthCounter {
 public:
  explicit DepthCounter(int& depth) : depth_(depth) { ++depth_; }
  ~DepthCounter() { --depth_; }
  DepthCounter(const DepthCounter&) = delete;
  DepthCounter& operator=(const DepthCounter&) = delete;

 private:
  int& depth_;
};

absl::Status UndefinedError(const Value& v, std::string_view fallback) {
  const std::string_view hint = v.undefined_hint();
  return absl::InvalidArgumentError(std::string(hint.empty() ? fallback : hint));
}

std::string ObjectName(const Value& v) { return fmt::format("{} object", TypeName(v)); }

}  // namespace

const Value* Interpreter::Scope::Find(std::string_view name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent_) {
    for (const auto& [key, value] : s->vars_) {
      if (key == name) return &value;
    }
  }
  return nullptr;
}

void Interpreter::Scope::Set(std::string_view name, Value value) {
  for (auto& [key, v] : vars_) {
    if (key == name) {
      v = std::move(value);
      return;
    }
  }
  vars_.emplace_back(std::string(name), std::move(value));
}

Interpreter::Interpreter(const Template& tmpl, RenderEnvironment env)
    : template_(tmpl), env_(env), budget_(env.limits.max_deep_work, env.limits.max_output_bytes) {}

absl::StatusOr<std::string> Interpreter::Render(const ValueDict& variables) {
  Scope root(nullptr);
  for (const auto& [key, value] : variables.entries()) {
    if (key.is_string()) root.Set(key.as_string(), value);
  }
  root_ = &root;
  std::string out;
  absl::StatusOr<Flow> flow = ExecList(template_.body, root, out);
  root_ = nullptr;
  if (!flow.ok()) return flow.status();
  if (budget_.exhausted()) return absl::InvalidArgumentError("template exceeded its work limit");
  return out;
}

absl::Status Interpreter::Fail(uint32_t offset, const absl::Status& status) {
  if (error_located_) return status;
  error_located_ = true;
  return absl::Status(status.code(), fmt::format("chat template error at {}: {}",
                                                 DescribePosition(template_.source, offset),
                                                 common::ToStd(status.message())));
}

absl::Status Interpreter::Fail(uint32_t offset, std::string_view message) {
  return Fail(offset, absl::InvalidArgumentError(std::string(message)));
}

absl::Status Interpreter::Step() {
  if (budget_.exhausted()) {
    return absl::InvalidArgumentError(
        fmt::format("template exceeded its work limit ({} node visits or a {} byte string)",
                    env_.limits.max_deep_work, env_.limits.max_output_bytes));
  }
  if (++steps_ > env_.limits.max_steps) {
    return absl::InvalidArgumentError(
        fmt::format("template exceeded {} evaluation steps", env_.limits.max_steps));
  }
  return absl::OkStatus();
}

absl::Status Interpreter::Charge(size_t bytes) {
  allocated_ += static_cast<int64_t>(std::min<size_t>(bytes, size_t{1} << 40));
  if (allocated_ > env_.limits.max_allocated_bytes) {
    return absl::InvalidArgumentError(
        fmt::format("template allocated more than {} bytes", env_.limits.max_allocated_bytes));
  }
  return absl::OkStatus();
}

absl::Status Interpreter::ChargeValue(const Value& v) {
  if (v.depth() > kMaxValueDepth) {
    return absl::InvalidArgumentError(fmt::format("value nested deeper than {}", kMaxValueDepth));
  }
  if (v.is_string()) return Charge(v.as_string().size());
  if (v.is_list_like()) return Charge(16 * v.as_list().size());
  if (v.is_dict()) return Charge(32 * v.as_dict().size());
  return absl::OkStatus();
}

absl::Status Interpreter::Append(std::string_view text, uint32_t offset, std::string& out) {
  if (out.size() + text.size() > env_.limits.max_output_bytes) {
    return Fail(offset, fmt::format("output exceeds {} bytes", env_.limits.max_output_bytes));
  }
  out += text;
  return absl::OkStatus();
}

// ---- Statements --------------------------------------------------------------------

absl::StatusOr<Interpreter::Flow> Interpreter::ExecList(const StmtList& body, Scope& scope,
                                                        std::string& out) {
  for (const StmtPtr& stmt : body) {
    TP_ASSIGN_OR_RETURN(Flow flow, Exec(*stmt, scope, out));
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

absl::StatusOr<Interpreter::Flow> Interpreter::Exec(const Stmt& stmt, Scope& scope, std::string& out) {
  DepthCounter counter(depth_);
  if (depth_ > env_.limits.max_eval_depth) return Fail(stmt.offset, "template nested too deeply");
  if (absl::Status s = Step(); !s.ok()) return Fail(stmt.offset, s);
  absl::StatusOr<Flow> flow = ExecNode(stmt, scope, out);
  if (!flow.ok()) return Fail(stmt.offset, flow.status());
  return flow;
}

absl::StatusOr<Interpreter::Flow> Interpreter::ExecNode(const Stmt& stmt, Scope& scope, std::string& out) {
  switch (stmt.kind) {
    case StmtKind::kText:
      TP_RETURN_IF_ERROR(Append(static_cast<const TextStmt&>(stmt).text, stmt.offset, out));
      return Flow::kNormal;
    case StmtKind::kOutput: {
      TP_ASSIGN_OR_RETURN(Value v, Eval(*static_cast<const OutputStmt&>(stmt).expr, scope));
      if (v.is_string()) {
        TP_RETURN_IF_ERROR(Append(v.as_string(), stmt.offset, out));
      } else {
        TP_RETURN_IF_ERROR(Append(ToStr(v, budget_), stmt.offset, out));
      }
      return Flow::kNormal;
    }
    case StmtKind::kIf: {
      const auto& if_stmt = static_cast<const IfStmt&>(stmt);
      for (const auto& [condition, body] : if_stmt.branches) {
        TP_ASSIGN_OR_RETURN(Value v, Eval(*condition, scope));
        if (IsTruthy(v)) return ExecList(body, scope, out);
      }
      return ExecList(if_stmt.else_body, scope, out);
    }
    case StmtKind::kFor:
      return ExecFor(static_cast<const ForStmt&>(stmt), scope, out);
    case StmtKind::kSet:
      TP_RETURN_IF_ERROR(ExecSet(static_cast<const SetStmt&>(stmt), scope));
      return Flow::kNormal;
    case StmtKind::kSetBlock: {
      const auto& set = static_cast<const SetBlockStmt&>(stmt);
      TP_ASSIGN_OR_RETURN(Value v, Capture(set.body, set.filter.get(), scope));
      TP_RETURN_IF_ERROR(Assign(stmt.offset, set.target, set.attribute, std::move(v), scope));
      return Flow::kNormal;
    }
    case StmtKind::kMacro: {
      const auto& macro = static_cast<const MacroStmt&>(stmt);
      scope.Set(macro.name, Value::Function(std::make_shared<MacroCallable>(macro)));
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      const auto& block = static_cast<const FilterBlockStmt&>(stmt);
      TP_ASSIGN_OR_RETURN(Value v, Capture(block.body, block.filter.get(), scope));
      TP_RETURN_IF_ERROR(Append(ToStr(v, budget_), stmt.offset, out));
      return Flow::kNormal;
    }
    case StmtKind::kScope: {
      Scope inner(&scope);
      TP_ASSIGN_OR_RETURN(Flow flow, ExecList(static_cast<const ScopeStmt&>(stmt).body, inner, out));
      return flow;
    }
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
  }
  return Flow::kNormal;
}

absl::StatusOr<Interpreter::Flow> Interpreter::ExecFor(const ForStmt& stmt, Scope& scope, std::string& out) {
  TP_ASSIGN_OR_RETURN(Value iterable, Eval(*stmt.iterable, scope));
  absl::StatusOr<ValueList> all = Iterate(iterable);
  if (!all.ok()) return Fail(stmt.iterable->offset, all.status());
  Scope loop_scope(&scope);
  auto bind = [&](const Value& item) -> absl::Status {
    if (!stmt.unpack) {
      loop_scope.Set(stmt.targets[0], item);
      return absl::OkStatus();
    }
    if (!item.is_list_like() || item.as_list().size() != stmt.targets.size()) {
      return Fail(stmt.offset, fmt::format("cannot unpack {} into {} loop variables", Repr(item, budget_),
                                           stmt.targets.size()));
    }
    for (size_t i = 0; i < stmt.targets.size(); ++i) loop_scope.Set(stmt.targets[i], item.as_list()[i]);
    return absl::OkStatus();
  };
  ValueList items;
  if (stmt.filter == nullptr) {
    items = *std::move(all);
  } else {
    for (const Value& item : *all) {
      TP_RETURN_IF_ERROR(bind(item));
      TP_ASSIGN_OR_RETURN(Value keep, Eval(*stmt.filter, loop_scope));
      if (IsTruthy(keep)) items.push_back(item);
    }
  }
  const int64_t length = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < length; ++i) {
    if (absl::Status s = Step(); !s.ok()) return Fail(stmt.offset, s);
    const Value& item = items[static_cast<size_t>(i)];
    TP_RETURN_IF_ERROR(bind(item));
    ValueDict loop;
    loop.Set(Value("index"), Value(i + 1));
    loop.Set(Value("index0"), Value(i));
    loop.Set(Value("revindex"), Value(length - i));
    loop.Set(Value("revindex0"), Value(length - i - 1));
    loop.Set(Value("first"), Value(i == 0));
    loop.Set(Value("last"), Value(i == length - 1));
    loop.Set(Value("length"), Value(length));
    loop.Set(Value("depth"), Value(int64_t{1}));
    loop.Set(Value("depth0"), Value(int64_t{0}));
    if (i > 0) loop.Set(Value("previtem"), items[static_cast<size_t>(i - 1)]);
    if (i + 1 < length) loop.Set(Value("nextitem"), items[static_cast<size_t>(i + 1)]);
    loop.Set(Value("cycle"), MakeLoopCycle(i));
    loop_scope.Set("loop", Value::Dict(std::move(loop)));
    TP_ASSIGN_OR_RETURN(Flow flow, ExecList(stmt.body, loop_scope, out));
    if (flow == Flow::kBreak) break;
  }
  if (length == 0 && !stmt.else_body.empty()) {
    Scope else_scope(&scope);
    TP_ASSIGN_OR_RETURN(Flow flow, ExecList(stmt.else_body, else_scope, out));
    (void)flow;
  }
  return Flow::kNormal;
}

absl::Status Interpreter::ExecSet(const SetStmt& stmt, Scope& scope) {
  TP_ASSIGN_OR_RETURN(Value value, Eval(*stmt.value, scope));
  if (!stmt.unpack) return Assign(stmt.offset, stmt.targets[0], stmt.attribute, std::move(value), scope);
  if (!value.is_list_like() || value.as_list().size() != stmt.targets.size()) {
    return Fail(stmt.offset, fmt::format("cannot unpack {} into {} variables", Repr(value, budget_), stmt.targets.size()));
  }
  for (size_t i = 0; i < stmt.targets.size(); ++i) scope.Set(stmt.targets[i], value.as_list()[i]);
  return absl::OkStatus();
}

absl::Status Interpreter::Assign(uint32_t offset, const std::string& target, const std::string& attribute,
                                 Value value, Scope& scope) {
  if (attribute.empty()) {
    scope.Set(target, std::move(value));
    return absl::OkStatus();
  }
  const Value* ns = scope.Find(target);
  if (ns == nullptr || ns->kind() != ValueKind::kNamespace) {
    return Fail(offset, fmt::format("cannot assign attribute '{}' on '{}': not a namespace", attribute, target));
  }
  if (value.holds_namespace()) {
    return Fail(offset, "a namespace cannot be stored in a namespace");
  }
  if (value.depth() >= kMaxValueDepth) {
    return Fail(offset, fmt::format("value nested deeper than {}", kMaxValueDepth));
  }
  ns->as_dict().Set(Value(attribute), std::move(value));
  return absl::OkStatus();
}

absl::StatusOr<Value> Interpreter::Capture(const StmtList& body, const Expr* filter, Scope& scope) {
  Scope inner(&scope);
  std::string text;
  TP_ASSIGN_OR_RETURN(Flow flow, ExecList(body, inner, text));
  (void)flow;
  TP_RETURN_IF_ERROR(Charge(text.size()));
  Value captured(std::move(text));
  if (filter == nullptr) return captured;
  inner.Set(kBlockBodyName, std::move(captured));
  return Eval(*filter, inner);
}

absl::StatusOr<Value> Interpreter::CallMacro(const MacroStmt& macro, CallArgs args) {
  if (call_depth_ >= env_.limits.max_call_depth) {
    return absl::InvalidArgumentError(
        fmt::format("macro calls nested deeper than {}", env_.limits.max_call_depth));
  }
  // Macros see the template's top-level names, their arguments and their own sets.
  Scope scope(root_);
  ValueList varargs;
  for (size_t i = 0; i < args.positional.size(); ++i) {
    if (i < macro.params.size()) {
      scope.Set(macro.params[i].first, std::move(args.positional[i]));
    } else {
      varargs.push_back(std::move(args.positional[i]));
    }
  }
  ValueDict kwargs;
  for (auto& [name, value] : args.keyword) {
    bool is_param = false;
    for (size_t i = 0; i < macro.params.size(); ++i) {
      if (macro.params[i].first != name) continue;
      if (i < args.positional.size()) {
        return absl::InvalidArgumentError(
            fmt::format("macro '{}' got multiple values for argument '{}'", macro.name, name));
      }
      is_param = true;
    }
    if (is_param) {
      scope.Set(name, std::move(value));
    } else {
      kwargs.Set(Value(name), std::move(value));
    }
  }
  for (size_t i = args.positional.size(); i < macro.params.size(); ++i) {
    const auto& [name, default_value] = macro.params[i];
    if (args.FindKeyword(name) != nullptr) continue;
    if (default_value == nullptr) {
      scope.Set(name, Value::Undefined(fmt::format("parameter '{}' was not provided", name)));
    } else {
      TP_ASSIGN_OR_RETURN(Value v, Eval(*default_value, scope));
      scope.Set(name, std::move(v));
    }
  }
  scope.Set("varargs", Value::Tuple(std::move(varargs)));
  scope.Set("kwargs", Value::Dict(std::move(kwargs)));
  ++call_depth_;
  std::string out;
  absl::StatusOr<Flow> flow = ExecList(macro.body, scope, out);
  --call_depth_;
  if (!flow.ok()) return flow.status();
  TP_RETURN_IF_ERROR(Charge(out.size()));
  return Value(std::move(out));
}

// ---- Expressions -------------------------------------------------------------------

absl::StatusOr<Value> Interpreter::Eval(const Expr& expr, Scope& scope) {
  DepthCounter counter(depth_);
  if (depth_ > env_.limits.max_eval_depth) return Fail(expr.offset, "template nested too deeply");
  if (absl::Status s = Step(); !s.ok()) return Fail(expr.offset, s);
  absl::StatusOr<Value> v = EvalNode(expr, scope);
  if (!v.ok()) return Fail(expr.offset, v.status());
  return v;
}

absl::StatusOr<CallArgs> Interpreter::EvalArgs(const Arguments& args, Scope& scope) {
  CallArgs out;
  out.positional.reserve(args.positional.size());
  for (const ExprPtr& e : args.positional) {
    TP_ASSIGN_OR_RETURN(Value v, Eval(*e, scope));
    out.positional.push_back(std::move(v));
  }
  for (const auto& [name, e] : args.keyword) {
    TP_ASSIGN_OR_RETURN(Value v, Eval(*e, scope));
    out.keyword.emplace_back(name, std::move(v));
  }
  return out;
}

absl::StatusOr<Value> Interpreter::EvalNode(const Expr& expr, Scope& scope) {
  switch (expr.kind) {
    case ExprKind::kLiteral:
      return static_cast<const LiteralExpr&>(expr).value;
    case ExprKind::kName: {
      const std::string& name = static_cast<const NameExpr&>(expr).name;
      if (const Value* v = scope.Find(name); v != nullptr) return *v;
      Value global = FindGlobal(name);
      if (!global.is_undefined()) return global;
      return Value::Undefined(fmt::format("'{}' is undefined", name));
    }
    case ExprKind::kList:
    case ExprKind::kTuple: {
      ValueList items;
      for (const ExprPtr& e : static_cast<const ListExpr&>(expr).items) {
        TP_ASSIGN_OR_RETURN(Value v, Eval(*e, scope));
        items.push_back(std::move(v));
      }
      TP_RETURN_IF_ERROR(Charge(16 * items.size()));
      return expr.kind == ExprKind::kList ? Value::List(std::move(items)) : Value::Tuple(std::move(items));
    }
    case ExprKind::kDict: {
      ValueDict dict;
      for (const auto& [key_expr, value_expr] : static_cast<const DictExpr&>(expr).items) {
        TP_ASSIGN_OR_RETURN(Value key, Eval(*key_expr, scope));
        TP_ASSIGN_OR_RETURN(Value value, Eval(*value_expr, scope));
        if (key.is_list_like() || key.is_dict() || key.kind() == ValueKind::kNamespace ||
            key.is_undefined()) {
          return absl::InvalidArgumentError(fmt::format("unhashable dict key type: '{}'", TypeName(key)));
        }
        dict.Set(std::move(key), std::move(value));
      }
      TP_RETURN_IF_ERROR(Charge(32 * dict.size()));
      return Value::Dict(std::move(dict));
    }
    case ExprKind::kGetAttr: {
      const auto& get = static_cast<const GetAttrExpr&>(expr);
      TP_ASSIGN_OR_RETURN(Value obj, Eval(*get.object, scope));
      return GetAttribute(obj, get.name);
    }
    case ExprKind::kGetItem: {
      const auto& get = static_cast<const GetItemExpr&>(expr);
      TP_ASSIGN_OR_RETURN(Value obj, Eval(*get.object, scope));
      TP_ASSIGN_OR_RETURN(Value key, Eval(*get.index, scope));
      return GetItem(obj, key);
    }
    case ExprKind::kSlice:
      return EvalSlice(static_cast<const SliceExpr&>(expr), scope);
    case ExprKind::kCall: {
      const auto& call = static_cast<const CallExpr&>(expr);
      TP_ASSIGN_OR_RETURN(Value callee, Eval(*call.callee, scope));
      TP_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(call.args, scope));
      return CallValue(callee, std::move(args));
    }
    case ExprKind::kFilter:
      return EvalFilter(static_cast<const FilterExpr&>(expr), scope);
    case ExprKind::kTest:
      return EvalTest(static_cast<const TestExpr&>(expr), scope);
    case ExprKind::kUnary: {
      const auto& unary = static_cast<const UnaryExpr&>(expr);
      TP_ASSIGN_OR_RETURN(Value v, Eval(*unary.operand, scope));
      if (unary.op == UnaryOp::kNot) return Value(!IsTruthy(v));
      if (v.is_undefined()) return UndefinedError(v, "undefined value used in an operation");
      if (!v.is_number()) {
        return absl::InvalidArgumentError(fmt::format("bad operand type for unary {}: '{}'",
                                                      unary.op == UnaryOp::kNegate ? '-' : '+', TypeName(v)));
      }
      if (unary.op == UnaryOp::kPlus) return v.kind() == ValueKind::kBool ? Value(v.as_int()) : v;
      if (v.kind() == ValueKind::kFloat) return Value(-v.as_double());
      if (v.as_int() == std::numeric_limits<int64_t>::min()) return absl::InvalidArgumentError("integer overflow");
      return Value(-v.as_int());
    }
    case ExprKind::kBinary:
      return EvalBinary(static_cast<const BinaryExpr&>(expr), scope);
    case ExprKind::kCompare:
      return EvalCompare(static_cast<const CompareExpr&>(expr), scope);
    case ExprKind::kConditional: {
      const auto& cond = static_cast<const ConditionalExpr&>(expr);
      TP_ASSIGN_OR_RETURN(Value c, Eval(*cond.condition, scope));
      if (IsTruthy(c)) return Eval(*cond.then_expr, scope);
      if (cond.else_expr == nullptr) return Value::Undefined("the conditional expression has no else");
      return Eval(*cond.else_expr, scope);
    }
  }
  return absl::InternalError("unknown expression kind");
}

absl::StatusOr<Value> Interpreter::EvalBinary(const BinaryExpr& expr, Scope& scope) {
  TP_ASSIGN_OR_RETURN(Value left, Eval(*expr.left, scope));
  if (expr.op == BinaryOp::kAnd) return IsTruthy(left) ? Eval(*expr.right, scope) : left;
  if (expr.op == BinaryOp::kOr) return IsTruthy(left) ? left : Eval(*expr.right, scope);
  TP_ASSIGN_OR_RETURN(Value right, Eval(*expr.right, scope));
  TP_ASSIGN_OR_RETURN(Value result, ApplyBinary(expr.op, left, right, budget_));
  TP_RETURN_IF_ERROR(ChargeValue(result));
  return result;
}

absl::StatusOr<Value> Interpreter::EvalCompare(const CompareExpr& expr, Scope& scope) {
  TP_ASSIGN_OR_RETURN(Value left, Eval(*expr.first, scope));
  for (const auto& [op, right_expr] : expr.rest) {
    TP_ASSIGN_OR_RETURN(Value right, Eval(*right_expr, scope));
    bool result = false;
    switch (op) {
      case CompareOp::kEq:
        result = Equals(left, right, budget_);
        break;
      case CompareOp::kNe:
        result = !Equals(left, right, budget_);
        break;
      case CompareOp::kIn:
      case CompareOp::kNotIn: {
        TP_ASSIGN_OR_RETURN(bool in, Contains(right, left, budget_));
        result = (op == CompareOp::kIn) == in;
        break;
      }
      default: {
        if (left.is_undefined()) return UndefinedError(left, "undefined value compared");
        if (right.is_undefined()) return UndefinedError(right, "undefined value compared");
        TP_ASSIGN_OR_RETURN(int c, Compare(left, right, budget_));
        result = op == CompareOp::kLt ? c < 0 : op == CompareOp::kLe ? c <= 0 : op == CompareOp::kGt ? c > 0 : c >= 0;
        break;
      }
    }
    if (!result) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

absl::StatusOr<Value> Interpreter::EvalSlice(const SliceExpr& expr, Scope& scope) {
  TP_ASSIGN_OR_RETURN(Value obj, Eval(*expr.object, scope));
  Value bounds[3];
  const Expr* parts[3] = {expr.start.get(), expr.stop.get(), expr.step.get()};
  for (int i = 0; i < 3; ++i) {
    if (parts[i] != nullptr) {
      TP_ASSIGN_OR_RETURN(bounds[i], Eval(*parts[i], scope));
    }
  }
  if (obj.is_undefined()) return UndefinedError(obj, "undefined value sliced");
  TP_ASSIGN_OR_RETURN(Value result, Slice(obj, bounds[0], bounds[1], bounds[2]));
  TP_RETURN_IF_ERROR(ChargeValue(result));
  return result;
}

absl::StatusOr<Value> Interpreter::EvalFilter(const FilterExpr& expr, Scope& scope) {
  if (!expr.known) return absl::InvalidArgumentError(fmt::format("no filter named '{}'", expr.name));
  TP_ASSIGN_OR_RETURN(Value input, Eval(*expr.operand, scope));
  TP_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(expr.args, scope));
  TP_ASSIGN_OR_RETURN(Value result, ApplyFilter(*this, expr.name, input, args));
  TP_RETURN_IF_ERROR(ChargeValue(result));
  return result;
}

absl::StatusOr<Value> Interpreter::EvalTest(const TestExpr& expr, Scope& scope) {
  if (!expr.known) return absl::InvalidArgumentError(fmt::format("no test named '{}'", expr.name));
  TP_ASSIGN_OR_RETURN(Value input, Eval(*expr.operand, scope));
  TP_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(expr.args, scope));
  TP_ASSIGN_OR_RETURN(bool result, ApplyTest(*this, expr.name, input, args));
  return Value(result != expr.negated);
}

absl::StatusOr<Value> Interpreter::CallValue(const Value& callee, CallArgs args) {
  if (callee.kind() == ValueKind::kCallable) {
    TP_ASSIGN_OR_RETURN(Value result, callee.as_callable().Call(*this, std::move(args)));
    TP_RETURN_IF_ERROR(ChargeValue(result));
    return result;
  }
  if (callee.is_undefined()) return UndefinedError(callee, "call of an undefined value");
  return absl::InvalidArgumentError(fmt::format("'{}' object is not callable", TypeName(callee)));
}

absl::StatusOr<Value> Interpreter::GetAttribute(const Value& obj, std::string_view name) {
  switch (obj.kind()) {
    case ValueKind::kUndefined:
      return UndefinedError(obj, "undefined value has no attributes");
    case ValueKind::kNamespace:
      if (const Value* v = obj.as_dict().Find(name); v != nullptr) return *v;
      break;
    case ValueKind::kDict: {
      // jinja2 tries getattr first: dict methods shadow keys of the same name.
      Value method = FindMethod(obj, name);
      if (!method.is_undefined() || !method.undefined_hint().empty()) return method;
      if (const Value* v = obj.as_dict().Find(name); v != nullptr) return *v;
      break;
    }
    case ValueKind::kString:
    case ValueKind::kList:
    case ValueKind::kTuple: {
      Value method = FindMethod(obj, name);
      if (!method.is_undefined() || !method.undefined_hint().empty()) return method;
      break;
    }
    default:
      break;
  }
  return Value::Undefined(fmt::format("'{}' has no attribute '{}'", ObjectName(obj), name));
}

absl::StatusOr<Value> Interpreter::GetItem(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case ValueKind::kUndefined:
      return UndefinedError(obj, "undefined value has no items");
    case ValueKind::kDict:
    case ValueKind::kNamespace:
      if (const Value* v = obj.as_dict().Find(key); v != nullptr) return *v;
      break;
    case ValueKind::kList:
    case ValueKind::kTuple:
      if (key.kind() == ValueKind::kInt || key.kind() == ValueKind::kBool) {
        const int64_t size = static_cast<int64_t>(obj.as_list().size());
        int64_t i = key.as_int();
        if (i < 0) i += size;
        if (i >= 0 && i < size) return obj.as_list()[static_cast<size_t>(i)];
      }
      break;
    case ValueKind::kString:
      if (key.kind() == ValueKind::kInt || key.kind() == ValueKind::kBool) {
        const std::u32string chars = DecodeUtf8(obj.as_string());
        const int64_t size = static_cast<int64_t>(chars.size());
        int64_t i = key.as_int();
        if (i < 0) i += size;
        if (i >= 0 && i < size) return Value(EncodeUtf8(chars.substr(static_cast<size_t>(i), 1)));
      }
      break;
    default:
      break;
  }
  // jinja2 falls back to the attribute of that name.
  if (key.is_string() && obj.kind() != ValueKind::kDict) {
    return GetAttribute(obj, key.as_string());
  }
  if (key.is_string() && obj.kind() == ValueKind::kDict) {
    Value method = FindMethod(obj, key.as_string());
    if (!method.is_undefined() || !method.undefined_hint().empty()) return method;
  }
  return Value::Undefined(fmt::format("'{}' has no item {}", ObjectName(obj), Repr(key, budget_)));
}

}  // namespace triplane::engine::chat::jinja
