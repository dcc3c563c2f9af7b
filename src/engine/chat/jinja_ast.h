#pragma once

// The syntax tree of a parsed Jinja template. Immutable after parsing, so one tree is
// shared by concurrent renders. Every node records its byte offset in the template
// source for error messages. Trees are at most kMaxNestingDepth deep (the parser
// enforces it), which bounds the recursion of evaluation and destruction.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/chat/jinja_value.h"

namespace triplane::engine::chat::jinja {

// Deepest nesting of expressions and of blocks the parser accepts.
inline constexpr int kMaxNestingDepth = 128;

// The name a {% filter %} or {% set x | f %} block's body is bound to while its filter
// chain runs; a space keeps templates from naming it.
inline constexpr std::string_view kBlockBodyName = " block body";

enum class ExprKind : uint8_t {
  kLiteral,
  kName,
  kList,
  kTuple,
  kDict,
  kGetAttr,
  kGetItem,
  kSlice,
  kCall,
  kFilter,
  kTest,
  kUnary,
  kBinary,
  kCompare,
  kConditional,
};

struct Expr {
  Expr(ExprKind k, uint32_t o) : kind(k), offset(o) {}
  virtual ~Expr() = default;
  ExprKind kind;
  uint32_t offset;
  int height = 1;  // 1 + the height of the tallest child
};
using ExprPtr = std::unique_ptr<Expr>;

struct LiteralExpr : Expr {
  LiteralExpr(uint32_t o, Value v) : Expr(ExprKind::kLiteral, o), value(std::move(v)) {}
  Value value;  // none, bool, int, float or string: immutable, safe to share
};

struct NameExpr : Expr {
  NameExpr(uint32_t o, std::string n) : Expr(ExprKind::kName, o), name(std::move(n)) {}
  std::string name;
};

// kList or kTuple.
struct ListExpr : Expr {
  using Expr::Expr;
  std::vector<ExprPtr> items;
};

struct DictExpr : Expr {
  explicit DictExpr(uint32_t o) : Expr(ExprKind::kDict, o) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
};

struct GetAttrExpr : Expr {
  GetAttrExpr(uint32_t o, ExprPtr obj, std::string n)
      : Expr(ExprKind::kGetAttr, o), object(std::move(obj)), name(std::move(n)) {}
  ExprPtr object;
  std::string name;
};

struct GetItemExpr : Expr {
  GetItemExpr(uint32_t o, ExprPtr obj, ExprPtr i)
      : Expr(ExprKind::kGetItem, o), object(std::move(obj)), index(std::move(i)) {}
  ExprPtr object;
  ExprPtr index;
};

// object[start:stop:step]; omitted parts are null.
struct SliceExpr : Expr {
  explicit SliceExpr(uint32_t o) : Expr(ExprKind::kSlice, o) {}
  ExprPtr object;
  ExprPtr start;
  ExprPtr stop;
  ExprPtr step;
};

struct Arguments {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct CallExpr : Expr {
  explicit CallExpr(uint32_t o) : Expr(ExprKind::kCall, o) {}
  ExprPtr callee;
  Arguments args;
};

// operand | name(args). `known` is false for a filter the environment lacks inside an
// {% if %} or conditional expression: as in jinja2, that fails only when evaluated.
struct FilterExpr : Expr {
  explicit FilterExpr(uint32_t o) : Expr(ExprKind::kFilter, o) {}
  ExprPtr operand;
  std::string name;
  Arguments args;
  bool known = true;
};

// operand is [not] name(args); `known` as for FilterExpr.
struct TestExpr : Expr {
  explicit TestExpr(uint32_t o) : Expr(ExprKind::kTest, o) {}
  ExprPtr operand;
  std::string name;
  Arguments args;
  bool negated = false;
  bool known = true;
};

enum class UnaryOp : uint8_t { kNot, kNegate, kPlus };

struct UnaryExpr : Expr {
  UnaryExpr(uint32_t o, UnaryOp p, ExprPtr e) : Expr(ExprKind::kUnary, o), op(p), operand(std::move(e)) {}
  UnaryOp op;
  ExprPtr operand;
};

enum class BinaryOp : uint8_t { kAnd, kOr, kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow, kConcat };

struct BinaryExpr : Expr {
  BinaryExpr(uint32_t o, BinaryOp p, ExprPtr l, ExprPtr r)
      : Expr(ExprKind::kBinary, o), op(p), left(std::move(l)), right(std::move(r)) {}
  BinaryOp op;
  ExprPtr left;
  ExprPtr right;
};

enum class CompareOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

// first op1 x1 op2 x2 ...: chained as in Python (a < b < c is a < b and b < c).
struct CompareExpr : Expr {
  explicit CompareExpr(uint32_t o) : Expr(ExprKind::kCompare, o) {}
  ExprPtr first;
  std::vector<std::pair<CompareOp, ExprPtr>> rest;
};

// then_expr if condition else else_expr; a missing else yields undefined.
struct ConditionalExpr : Expr {
  explicit ConditionalExpr(uint32_t o) : Expr(ExprKind::kConditional, o) {}
  ExprPtr condition;
  ExprPtr then_expr;
  ExprPtr else_expr;
};

enum class StmtKind : uint8_t {
  kText,
  kOutput,
  kIf,
  kFor,
  kSet,
  kSetBlock,
  kMacro,
  kFilterBlock,
  kScope,  // a body run as is: {% generation %}
  kBreak,
  kContinue,
};

struct Stmt {
  Stmt(StmtKind k, uint32_t o) : kind(k), offset(o) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  uint32_t offset;
};
using StmtPtr = std::unique_ptr<Stmt>;
using StmtList = std::vector<StmtPtr>;

struct TextStmt : Stmt {
  TextStmt(uint32_t o, std::string t) : Stmt(StmtKind::kText, o), text(std::move(t)) {}
  std::string text;
};

struct OutputStmt : Stmt {
  OutputStmt(uint32_t o, ExprPtr e) : Stmt(StmtKind::kOutput, o), expr(std::move(e)) {}
  ExprPtr expr;
};

struct IfStmt : Stmt {
  explicit IfStmt(uint32_t o) : Stmt(StmtKind::kIf, o) {}
  std::vector<std::pair<ExprPtr, StmtList>> branches;  // if, then each elif
  StmtList else_body;
};

struct ForStmt : Stmt {
  explicit ForStmt(uint32_t o) : Stmt(StmtKind::kFor, o) {}
  std::vector<std::string> targets;  // one name, or several to unpack each item into
  bool unpack = false;
  ExprPtr iterable;
  ExprPtr filter;  // `for x in xs if cond`; may be null
  StmtList body;
  StmtList else_body;  // runs when no item was iterated
};

// {% set a = v %}, {% set a, b = v %} or {% set ns.attr = v %}.
struct SetStmt : Stmt {
  explicit SetStmt(uint32_t o) : Stmt(StmtKind::kSet, o) {}
  std::vector<std::string> targets;
  bool unpack = false;
  std::string attribute;  // non-empty: assign targets[0].attribute (a namespace)
  ExprPtr value;
};

// {% set name %}body{% endset %}, optionally filtered: {% set name | trim %}.
struct SetBlockStmt : Stmt {
  explicit SetBlockStmt(uint32_t o) : Stmt(StmtKind::kSetBlock, o) {}
  std::string target;
  std::string attribute;
  ExprPtr filter;  // applied to kBlockBodyName; may be null
  StmtList body;
};

struct MacroStmt : Stmt {
  explicit MacroStmt(uint32_t o) : Stmt(StmtKind::kMacro, o) {}
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // default may be null
  StmtList body;
};

struct FilterBlockStmt : Stmt {
  explicit FilterBlockStmt(uint32_t o) : Stmt(StmtKind::kFilterBlock, o) {}
  ExprPtr filter;  // a filter chain applied to kBlockBodyName
  StmtList body;
};

struct ScopeStmt : Stmt {
  explicit ScopeStmt(uint32_t o) : Stmt(StmtKind::kScope, o) {}
  StmtList body;
};

// A parsed template: the normalised source (for error positions) and its statements.
struct Template {
  std::string source;
  StmtList body;
};

}  // namespace triplane::engine::chat::jinja
