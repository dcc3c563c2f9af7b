#pragma once

// Renders a parsed template (jinja_ast.h) with jinja2's runtime semantics: default
// Undefined (prints as nothing, fails when used as an object), scoping (for loops and
// macros have their own scope, if does not; namespace() carries values out of loops),
// Python operators and Hugging Face's sandbox (lists and dicts cannot be modified).
//
// One Interpreter serves one render: it holds the render's state (variables, step and
// allocation budgets) and is not thread-safe; the Template it reads is shared and const.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/chat/jinja_ast.h"
#include "engine/chat/jinja_callable.h"
#include "engine/chat/jinja_value.h"

namespace triplane::engine::chat::jinja {

// Bounds on one render, so that a hostile template or input ends in an error instead of
// exhausting time, memory or the stack.
struct RenderLimits {
  // Bytes of the rendered text, and of any one captured block or macro result.
  size_t max_output_bytes = size_t{8} << 20;
  // Evaluated expressions, executed statements and loop iterations together.
  int64_t max_steps = 20'000'000;
  // Bytes of strings and container slots created while rendering, together.
  int64_t max_allocated_bytes = int64_t{256} << 20;
  // Nested macro calls.
  int max_call_depth = 32;
  // Nested evaluation (expressions within statements within macro calls).
  int max_eval_depth = 600;
  // Node visits of deep operations (str() of containers, json, ==, in), together.
  int64_t max_deep_work = int64_t{1} << 27;
};

struct RenderEnvironment {
  RenderLimits limits;
  // What strftime_now() formats, as UTC.
  std::chrono::system_clock::time_point now;
};

class Interpreter {
 public:
  // `tmpl` must outlive the Interpreter.
  Interpreter(const Template& tmpl, RenderEnvironment env);

  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // Renders the template with `variables` as its top-level names (entries whose key is
  // not a string are ignored). Call once. InvalidArgument with the template position for
  // any template error, a raise_exception() call or a limit reached.
  [[nodiscard]] absl::StatusOr<std::string> Render(const ValueDict& variables);

  // ---- For builtins (filters, tests, methods, globals) -----------------------------

  // Calls a callable value (macro, global function, bound method).
  [[nodiscard]] absl::StatusOr<Value> CallValue(const Value& callee, CallArgs args);
  // `obj.name` as jinja2 resolves it: methods of str/list/dict, dict keys, namespace
  // attributes; undefined when missing. Fails when `obj` is undefined.
  [[nodiscard]] absl::StatusOr<Value> GetAttribute(const Value& obj, std::string_view name);
  // `obj[key]`: dict keys, list and str indices (negative from the end); undefined when
  // missing. Fails when `obj` is undefined.
  [[nodiscard]] absl::StatusOr<Value> GetItem(const Value& obj, const Value& key);
  // Counts `bytes` against the allocation budget.
  [[nodiscard]] absl::Status Charge(size_t bytes);
  // Counts a created value: string bytes, or 16 bytes per container slot.
  [[nodiscard]] absl::Status ChargeValue(const Value& v);
  // Counts one unit of work against the step budget; fails once the step budget or
  // the deep-operation budget is exhausted.
  [[nodiscard]] absl::Status Step();
  // Allowance for str(), repr(), json, == and friends in this render.
  WorkBudget& budget() { return budget_; }
  const RenderLimits& limits() const { return env_.limits; }
  std::chrono::system_clock::time_point now() const { return env_.now; }

 private:
  // Variables of one frame (template top level, a loop, a macro call, a block), chained
  // to the enclosing frame for reads; writes go to the innermost frame.
  class Scope {
   public:
    explicit Scope(Scope* parent) : parent_(parent) {}
    const Value* Find(std::string_view name) const;
    void Set(std::string_view name, Value value);

   private:
    Scope* parent_;
    std::vector<std::pair<std::string, Value>> vars_;
  };

  enum class Flow : uint8_t { kNormal, kBreak, kContinue };

  // Ends a render with `message` located at `offset` (or as it is if already located).
  absl::Status Fail(uint32_t offset, const absl::Status& status);
  absl::Status Fail(uint32_t offset, std::string_view message);

  absl::StatusOr<Flow> ExecList(const StmtList& body, Scope& scope, std::string& out);
  absl::StatusOr<Flow> Exec(const Stmt& stmt, Scope& scope, std::string& out);
  absl::StatusOr<Flow> ExecNode(const Stmt& stmt, Scope& scope, std::string& out);
  absl::StatusOr<Flow> ExecFor(const ForStmt& stmt, Scope& scope, std::string& out);
  absl::Status ExecSet(const SetStmt& stmt, Scope& scope);
  absl::Status Assign(uint32_t offset, const std::string& target, const std::string& attribute,
                      Value value, Scope& scope);
  // Renders `body` in a child scope into a string, then applies `filter` (may be null).
  absl::StatusOr<Value> Capture(const StmtList& body, const Expr* filter, Scope& scope);
  absl::Status Append(std::string_view text, uint32_t offset, std::string& out);

  absl::StatusOr<Value> Eval(const Expr& expr, Scope& scope);
  absl::StatusOr<Value> EvalNode(const Expr& expr, Scope& scope);
  absl::StatusOr<CallArgs> EvalArgs(const Arguments& args, Scope& scope);
  absl::StatusOr<Value> EvalBinary(const BinaryExpr& expr, Scope& scope);
  absl::StatusOr<Value> EvalCompare(const CompareExpr& expr, Scope& scope);
  absl::StatusOr<Value> EvalSlice(const SliceExpr& expr, Scope& scope);
  absl::StatusOr<Value> EvalFilter(const FilterExpr& expr, Scope& scope);
  absl::StatusOr<Value> EvalTest(const TestExpr& expr, Scope& scope);
  absl::StatusOr<Value> CallMacro(const MacroStmt& macro, CallArgs args);

  friend class MacroCallable;

  const Template& template_;
  RenderEnvironment env_;
  WorkBudget budget_;
  Scope* root_ = nullptr;
  int64_t steps_ = 0;
  int64_t allocated_ = 0;
  int depth_ = 0;
  int call_depth_ = 0;
  bool error_located_ = false;
};

}  // namespace triplane::engine::chat::jinja
