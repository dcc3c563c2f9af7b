#include "engine/chat/jinja_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <system_error>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "engine/chat/jinja_builtins.h"
#include "engine/chat/jinja_lexer.h"

namespace triplane::engine::chat::jinja {
namespace {

int HeightOf(const ExprPtr& e) { return e == nullptr ? 0 : e->height; }

int HeightOf(const Arguments& args) {
  int h = 0;
  for (const ExprPtr& e : args.positional) h = std::max(h, HeightOf(e));
  for (const auto& [name, e] : args.keyword) h = std::max(h, HeightOf(e));
  return h;
}

class Parser {
 public:
  explicit Parser(LexedTemplate lexed) : source_(std::move(lexed.source)), tokens_(std::move(lexed.tokens)) {}

  absl::StatusOr<std::unique_ptr<const Template>> Run() {
    auto tmpl = std::make_unique<Template>();
    TP_ASSIGN_OR_RETURN(tmpl->body, ParseStatements({}));
    if (!unknown_names_.empty()) return unknown_names_.front();
    tmpl->source = std::move(source_);
    return std::unique_ptr<const Template>(std::move(tmpl));
  }

 private:
  // Counts nested parse calls so that hostile input cannot exhaust the stack.
  class DepthGuard {
   public:
    explicit DepthGuard(Parser& p) : p_(p) { ++p_.depth_; }
    ~DepthGuard() { --p_.depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Parser& p_;
  };

  // Runs `fn` with the soft flag set to `soft` (see FilterExpr::known).
  template <typename Fn>
  auto WithSoft(bool soft, Fn fn) {
    const bool saved = soft_;
    soft_ = soft;
    auto result = fn();
    soft_ = saved;
    return result;
  }

  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& Next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool IsOp(std::string_view op, size_t ahead = 0) const {
    const Token& t = Peek(ahead);
    return t.kind == TokenKind::kOperator && t.text == op;
  }
  bool IsName(std::string_view name, size_t ahead = 0) const {
    const Token& t = Peek(ahead);
    return t.kind == TokenKind::kName && t.text == name;
  }
  bool SkipOp(std::string_view op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(std::string_view name) {
    if (!IsName(name)) return false;
    Next();
    return true;
  }

  absl::Status Error(uint32_t offset, std::string_view message) const {
    return absl::InvalidArgumentError(
        fmt::format("syntax error at {}: {}", DescribePosition(source_, offset), message));
  }
  absl::Status Unexpected(std::string_view expected) const {
    const Token& t = Peek();
    std::string got;
    switch (t.kind) {
      case TokenKind::kEnd: got = "end of template"; break;
      case TokenKind::kBlockEnd: got = "'%}'"; break;
      case TokenKind::kExprEnd: got = "'}}'"; break;
      case TokenKind::kText: got = "template text"; break;
      case TokenKind::kString: got = "a string"; break;
      default: got = fmt::format("'{}'", t.text); break;
    }
    return Error(t.offset, fmt::format("expected {}, got {}", expected, got));
  }
  absl::Status ExpectOp(std::string_view op) {
    if (!SkipOp(op)) return Unexpected(fmt::format("'{}'", op));
    return absl::OkStatus();
  }
  absl::Status ExpectBlockEnd() {
    if (Peek().kind != TokenKind::kBlockEnd) return Unexpected("'%}'");
    Next();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectName() {
    if (Peek().kind != TokenKind::kName) return Unexpected("a name");
    return Next().text;
  }

  // Sets e's height from its children; fails past kMaxNestingDepth.
  absl::StatusOr<ExprPtr> Finish(ExprPtr e, int child_height) {
    e->height = child_height + 1;
    if (e->height > kMaxNestingDepth) return Error(e->offset, "expression nested too deeply");
    return e;
  }

  // ---- Statements ----------------------------------------------------------

  // Parses statements until a block tag named in `end_tags` (consumed up to its name;
  // `end_tag_` says which) or, with no end tags, the end of the template.
  absl::StatusOr<StmtList> ParseStatements(std::initializer_list<std::string_view> end_tags) {
    DepthGuard guard(*this);
    if (depth_ > kMaxNestingDepth) return Error(Peek().offset, "blocks nested too deeply");
    StmtList body;
    while (true) {
      const Token& t = Peek();
      switch (t.kind) {
        case TokenKind::kText:
          body.push_back(std::make_unique<TextStmt>(t.offset, t.text));
          Next();
          continue;
        case TokenKind::kExprBegin: {
          const uint32_t offset = Next().offset;
          TP_ASSIGN_OR_RETURN(ExprPtr e, ParseTupleExpression(true));
          if (Peek().kind != TokenKind::kExprEnd) return Unexpected("'}}'");
          Next();
          body.push_back(std::make_unique<OutputStmt>(offset, std::move(e)));
          continue;
        }
        case TokenKind::kBlockBegin: {
          const Token& name = Peek(1);
          if (name.kind != TokenKind::kName) {
            Next();
            return Unexpected("a tag name");
          }
          if (std::find(end_tags.begin(), end_tags.end(), name.text) != end_tags.end()) {
            Next();
            end_tag_ = Next().text;
            return body;
          }
          TP_ASSIGN_OR_RETURN(StmtPtr stmt, ParseStatement());
          body.push_back(std::move(stmt));
          continue;
        }
        case TokenKind::kEnd:
          if (end_tags.size() > 0) {
            return Error(t.offset, fmt::format("unexpected end of template: missing {{% {} %}}",
                                               *(end_tags.end() - 1)));
          }
          return body;
        default:
          return Unexpected("template text or a tag");
      }
    }
  }

  // A block tag other than an end tag; the current token is its '{%'.
  absl::StatusOr<StmtPtr> ParseStatement() {
    Next();  // {%
    const Token& name_token = Next();
    const uint32_t offset = name_token.offset;
    const std::string& name = name_token.text;
    if (name == "if") return ParseIf(offset);
    if (name == "for") return ParseFor(offset);
    if (name == "set") return ParseSet(offset);
    if (name == "macro") return ParseMacro(offset);
    if (name == "filter") return ParseFilterBlock(offset);
    if (name == "generation") {
      auto stmt = std::make_unique<ScopeStmt>(offset);
      TP_RETURN_IF_ERROR(ExpectBlockEnd());
      TP_ASSIGN_OR_RETURN(stmt->body, WithSoft(false, [&] { return ParseStatements({"endgeneration"}); }));
      TP_RETURN_IF_ERROR(ExpectBlockEnd());
      return StmtPtr(std::move(stmt));
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) return Error(offset, fmt::format("'{}' outside of a loop", name));
      TP_RETURN_IF_ERROR(ExpectBlockEnd());
      return std::make_unique<Stmt>(name == "break" ? StmtKind::kBreak : StmtKind::kContinue, offset);
    }
    if (name.starts_with("end") || name == "elif" || name == "else") {
      return Error(offset, fmt::format("unexpected '{}'", name));
    }
    return Error(offset, fmt::format("unknown tag '{}'", name));
  }

  absl::StatusOr<StmtPtr> ParseIf(uint32_t offset) {
    auto stmt = std::make_unique<IfStmt>(offset);
    return WithSoft(true, [&]() -> absl::StatusOr<StmtPtr> {
      while (true) {
        TP_ASSIGN_OR_RETURN(ExprPtr condition, ParseTupleExpression(true));
        TP_RETURN_IF_ERROR(ExpectBlockEnd());
        TP_ASSIGN_OR_RETURN(StmtList body, ParseStatements({"elif", "else", "endif"}));
        stmt->branches.emplace_back(std::move(condition), std::move(body));
        if (end_tag_ == "elif") continue;
        if (end_tag_ == "else") {
          TP_RETURN_IF_ERROR(ExpectBlockEnd());
          TP_ASSIGN_OR_RETURN(stmt->else_body, ParseStatements({"endif"}));
        }
        TP_RETURN_IF_ERROR(ExpectBlockEnd());
        return StmtPtr(std::move(stmt));
      }
    });
  }

  // Names separated by commas, optionally in parentheses: `x`, `k, v`, `(k, v)`.
  absl::Status ParseTargets(std::vector<std::string>& targets, bool& unpack) {
    const bool paren = SkipOp("(");
    while (true) {
      TP_ASSIGN_OR_RETURN(std::string name, ExpectName());
      targets.push_back(std::move(name));
      if (!SkipOp(",")) break;
      unpack = true;
      if (Peek().kind != TokenKind::kName) break;
    }
    if (paren) {
      unpack = true;
      TP_RETURN_IF_ERROR(ExpectOp(")"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<StmtPtr> ParseFor(uint32_t offset) {
    auto stmt = std::make_unique<ForStmt>(offset);
    TP_RETURN_IF_ERROR(ParseTargets(stmt->targets, stmt->unpack));
    if (!SkipName("in")) return Unexpected("'in'");
    TP_ASSIGN_OR_RETURN(stmt->iterable, ParseTupleExpression(false));
    return WithSoft(false, [&]() -> absl::StatusOr<StmtPtr> {
      if (SkipName("if")) {
        TP_ASSIGN_OR_RETURN(stmt->filter, ParseExpression(true));
      }
      if (IsName("recursive")) return Error(Peek().offset, "recursive loops are not supported");
      TP_RETURN_IF_ERROR(ExpectBlockEnd());
      ++loop_depth_;
      absl::StatusOr<StmtList> body = ParseStatements({"else", "endfor"});
      --loop_depth_;
      if (!body.ok()) return body.status();
      stmt->body = *std::move(body);
      if (end_tag_ == "else") {
        TP_RETURN_IF_ERROR(ExpectBlockEnd());
        TP_ASSIGN_OR_RETURN(stmt->else_body, ParseStatements({"endfor"}));
      }
      TP_RETURN_IF_ERROR(ExpectBlockEnd());
      return StmtPtr(std::move(stmt));
    });
  }

  absl::StatusOr<StmtPtr> ParseSet(uint32_t offset) {
    std::vector<std::string> targets;
    bool unpack = false;
    std::string attribute;
    TP_RETURN_IF_ERROR(ParseTargets(targets, unpack));
    if (!unpack && SkipOp(".")) {
      TP_ASSIGN_OR_RETURN(attribute, ExpectName());
    }
    if (SkipOp("=")) {
      auto stmt = std::make_unique<SetStmt>(offset);
      stmt->targets = std::move(targets);
      stmt->unpack = unpack;
      stmt->attribute = std::move(attribute);
      TP_ASSIGN_OR_RETURN(stmt->value, ParseTupleExpression(true));
      TP_RETURN_IF_ERROR(ExpectBlockEnd());
      return StmtPtr(std::move(stmt));
    }
    if (unpack) return Unexpected("'='");
    auto stmt = std::make_unique<SetBlockStmt>(offset);
    stmt->target = std::move(targets[0]);
    stmt->attribute = std::move(attribute);
    return WithSoft(false, [&]() -> absl::StatusOr<StmtPtr> {
      if (IsOp("|")) {
        TP_ASSIGN_OR_RETURN(stmt->filter, ParseFilterChain(Peek().offset));
      }
      TP_RETURN_IF_ERROR(ExpectBlockEnd());
      TP_ASSIGN_OR_RETURN(stmt->body, ParseStatements({"endset"}));
      TP_RETURN_IF_ERROR(ExpectBlockEnd());
      return StmtPtr(std::move(stmt));
    });
  }

  absl::StatusOr<StmtPtr> ParseMacro(uint32_t offset) {
    auto stmt = std::make_unique<MacroStmt>(offset);
    TP_ASSIGN_OR_RETURN(stmt->name, ExpectName());
    TP_RETURN_IF_ERROR(ExpectOp("("));
    while (!SkipOp(")")) {
      if (!stmt->params.empty()) TP_RETURN_IF_ERROR(ExpectOp(","));
      if (SkipOp(")")) break;
      TP_ASSIGN_OR_RETURN(std::string param, ExpectName());
      ExprPtr default_value;
      if (SkipOp("=")) {
        TP_ASSIGN_OR_RETURN(default_value, ParseExpression(true));
      } else if (!stmt->params.empty() && stmt->params.back().second != nullptr) {
        return Error(Peek().offset, "non-default argument follows default argument");
      }
      stmt->params.emplace_back(std::move(param), std::move(default_value));
    }
    TP_RETURN_IF_ERROR(ExpectBlockEnd());
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;
    absl::StatusOr<StmtList> body = WithSoft(false, [&] { return ParseStatements({"endmacro"}); });
    loop_depth_ = saved_loops;
    if (!body.ok()) return body.status();
    stmt->body = *std::move(body);
    if (Peek().kind == TokenKind::kName) Next();  // {% endmacro name %}
    TP_RETURN_IF_ERROR(ExpectBlockEnd());
    return StmtPtr(std::move(stmt));
  }

  absl::StatusOr<StmtPtr> ParseFilterBlock(uint32_t offset) {
    auto stmt = std::make_unique<FilterBlockStmt>(offset);
    return WithSoft(false, [&]() -> absl::StatusOr<StmtPtr> {
      TP_ASSIGN_OR_RETURN(stmt->filter, ParseFilterChain(offset, /*leading_pipe=*/false));
      TP_RETURN_IF_ERROR(ExpectBlockEnd());
      TP_ASSIGN_OR_RETURN(stmt->body, ParseStatements({"endfilter"}));
      TP_RETURN_IF_ERROR(ExpectBlockEnd());
      return StmtPtr(std::move(stmt));
    });
  }

  // `|f(args)|g` applied to the block body placeholder.
  absl::StatusOr<ExprPtr> ParseFilterChain(uint32_t offset, bool leading_pipe = true) {
    ExprPtr e = std::make_unique<NameExpr>(offset, std::string(kBlockBodyName));
    bool first = true;
    while (true) {
      if (!(first && !leading_pipe) && !SkipOp("|")) break;
      first = false;
      TP_ASSIGN_OR_RETURN(e, ParseFilter(std::move(e)));
    }
    return e;
  }

  // ---- Expressions ---------------------------------------------------------

  // An expression, or a bare tuple `a, b` (as in {% set x = 1, 2 %}).
  absl::StatusOr<ExprPtr> ParseTupleExpression(bool with_condexpr) {
    const uint32_t offset = Peek().offset;
    TP_ASSIGN_OR_RETURN(ExprPtr first, ParseExpression(with_condexpr));
    if (!IsOp(",")) return first;
    auto tuple = std::make_unique<ListExpr>(ExprKind::kTuple, offset);
    int height = first->height;
    tuple->items.push_back(std::move(first));
    while (SkipOp(",")) {
      const Token& t = Peek();
      if (t.kind == TokenKind::kBlockEnd || t.kind == TokenKind::kExprEnd || IsName("if")) break;
      TP_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(with_condexpr));
      height = std::max(height, item->height);
      tuple->items.push_back(std::move(item));
    }
    return Finish(std::move(tuple), height);
  }

  absl::StatusOr<ExprPtr> ParseExpression(bool with_condexpr) {
    DepthGuard guard(*this);
    if (depth_ > kMaxNestingDepth) return Error(Peek().offset, "expression nested too deeply");
    const size_t unknown_mark = unknown_names_.size();
    TP_ASSIGN_OR_RETURN(ExprPtr e, ParseOr());
    if (!with_condexpr) return e;
    while (IsName("if")) {
      // The whole conditional expression is soft, its first part included.
      unknown_names_.resize(unknown_mark);
      auto cond = std::make_unique<ConditionalExpr>(Next().offset);
      TP_ASSIGN_OR_RETURN(cond->condition, WithSoft(true, [&] { return ParseOr(); }));
      if (SkipName("else")) {
        TP_ASSIGN_OR_RETURN(cond->else_expr, WithSoft(true, [&] { return ParseExpression(true); }));
      }
      cond->then_expr = std::move(e);
      const int h = std::max({HeightOf(cond->condition), HeightOf(cond->then_expr), HeightOf(cond->else_expr)});
      TP_ASSIGN_OR_RETURN(e, Finish(std::move(cond), h));
    }
    return e;
  }

  absl::StatusOr<ExprPtr> ParseOr() {
    TP_ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
    while (IsName("or")) {
      const uint32_t offset = Next().offset;
      TP_ASSIGN_OR_RETURN(ExprPtr right, ParseAnd());
      const int h = std::max(left->height, right->height);
      TP_ASSIGN_OR_RETURN(left, Finish(std::make_unique<BinaryExpr>(offset, BinaryOp::kOr, std::move(left), std::move(right)), h));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseAnd() {
    TP_ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
    while (IsName("and")) {
      const uint32_t offset = Next().offset;
      TP_ASSIGN_OR_RETURN(ExprPtr right, ParseNot());
      const int h = std::max(left->height, right->height);
      TP_ASSIGN_OR_RETURN(left, Finish(std::make_unique<BinaryExpr>(offset, BinaryOp::kAnd, std::move(left), std::move(right)), h));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseNot() {
    if (IsName("not")) {
      DepthGuard guard(*this);
      if (depth_ > kMaxNestingDepth) return Error(Peek().offset, "expression nested too deeply");
      const uint32_t offset = Next().offset;
      TP_ASSIGN_OR_RETURN(ExprPtr operand, ParseNot());
      const int h = operand->height;
      return Finish(std::make_unique<UnaryExpr>(offset, UnaryOp::kNot, std::move(operand)), h);
    }
    return ParseCompare();
  }

  absl::StatusOr<ExprPtr> ParseCompare() {
    const uint32_t offset = Peek().offset;
    TP_ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
    auto cmp = std::make_unique<CompareExpr>(offset);
    int height = first->height;
    while (true) {
      CompareOp op;
      const Token& t = Peek();
      if (t.kind == TokenKind::kOperator && t.text == "==") op = CompareOp::kEq;
      else if (t.kind == TokenKind::kOperator && t.text == "!=") op = CompareOp::kNe;
      else if (t.kind == TokenKind::kOperator && t.text == "<") op = CompareOp::kLt;
      else if (t.kind == TokenKind::kOperator && t.text == "<=") op = CompareOp::kLe;
      else if (t.kind == TokenKind::kOperator && t.text == ">") op = CompareOp::kGt;
      else if (t.kind == TokenKind::kOperator && t.text == ">=") op = CompareOp::kGe;
      else if (IsName("in")) op = CompareOp::kIn;
      else if (IsName("not") && IsName("in", 1)) op = CompareOp::kNotIn;
      else break;
      Next();
      if (op == CompareOp::kNotIn) Next();
      TP_ASSIGN_OR_RETURN(ExprPtr right, ParseMath1());
      height = std::max(height, right->height);
      cmp->rest.emplace_back(op, std::move(right));
    }
    if (cmp->rest.empty()) return first;
    cmp->first = std::move(first);
    return Finish(std::move(cmp), height);
  }

  // Left-associative binary operators of one precedence level.
  template <typename Sub>
  absl::StatusOr<ExprPtr> ParseBinary(std::initializer_list<std::pair<std::string_view, BinaryOp>> ops, Sub sub) {
    TP_ASSIGN_OR_RETURN(ExprPtr left, sub());
    while (true) {
      const BinaryOp* op = nullptr;
      for (const auto& [text, candidate] : ops) {
        if (IsOp(text)) op = &candidate;
      }
      if (op == nullptr) return left;
      const uint32_t offset = Next().offset;
      TP_ASSIGN_OR_RETURN(ExprPtr right, sub());
      const int h = std::max(left->height, right->height);
      TP_ASSIGN_OR_RETURN(left, Finish(std::make_unique<BinaryExpr>(offset, *op, std::move(left), std::move(right)), h));
    }
  }

  absl::StatusOr<ExprPtr> ParseMath1() {
    return ParseBinary({{"+", BinaryOp::kAdd}, {"-", BinaryOp::kSub}}, [&] { return ParseConcat(); });
  }
  absl::StatusOr<ExprPtr> ParseConcat() {
    return ParseBinary({{"~", BinaryOp::kConcat}}, [&] { return ParseMath2(); });
  }
  absl::StatusOr<ExprPtr> ParseMath2() {
    return ParseBinary({{"*", BinaryOp::kMul}, {"/", BinaryOp::kDiv}, {"//", BinaryOp::kFloorDiv}, {"%", BinaryOp::kMod}},
                       [&] { return ParsePow(); });
  }
  absl::StatusOr<ExprPtr> ParsePow() {
    return ParseBinary({{"**", BinaryOp::kPow}}, [&] { return ParseUnary(true); });
  }

  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter) {
    DepthGuard guard(*this);
    if (depth_ > kMaxNestingDepth) return Error(Peek().offset, "expression nested too deeply");
    ExprPtr e;
    if (IsOp("-") || IsOp("+")) {
      const Token& t = Next();
      const UnaryOp op = t.text == "-" ? UnaryOp::kNegate : UnaryOp::kPlus;
      TP_ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary(false));
      const int h = operand->height;
      TP_ASSIGN_OR_RETURN(e, Finish(std::make_unique<UnaryExpr>(t.offset, op, std::move(operand)), h));
    } else {
      TP_ASSIGN_OR_RETURN(e, ParsePrimary());
      TP_ASSIGN_OR_RETURN(e, ParsePostfix(std::move(e)));
    }
    if (!with_filter) return e;
    // Filters, tests and calls after them: `x|f|g`, `x is defined`, `x|f()`.
    while (true) {
      if (IsOp("|")) {
        Next();
        TP_ASSIGN_OR_RETURN(e, ParseFilter(std::move(e)));
      } else if (IsName("is")) {
        TP_ASSIGN_OR_RETURN(e, ParseTest(std::move(e)));
      } else if (IsOp("(")) {
        TP_ASSIGN_OR_RETURN(e, ParseCall(std::move(e)));
      } else {
        return e;
      }
    }
  }

  absl::StatusOr<ExprPtr> ParsePrimary() {
    const Token& t = Peek();
    switch (t.kind) {
      case TokenKind::kName: {
        Next();
        if (t.text == "true" || t.text == "True") return ExprPtr(std::make_unique<LiteralExpr>(t.offset, Value(true)));
        if (t.text == "false" || t.text == "False") return ExprPtr(std::make_unique<LiteralExpr>(t.offset, Value(false)));
        if (t.text == "none" || t.text == "None") return ExprPtr(std::make_unique<LiteralExpr>(t.offset, Value::None()));
        return ExprPtr(std::make_unique<NameExpr>(t.offset, t.text));
      }
      case TokenKind::kString: {
        // Adjacent literals concatenate: "a" "b" is "ab".
        std::string text = Next().text;
        while (Peek().kind == TokenKind::kString) text += Next().text;
        return ExprPtr(std::make_unique<LiteralExpr>(t.offset, Value(std::move(text))));
      }
      case TokenKind::kInt: {
        Next();
        int64_t v = 0;
        const auto [ptr, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (ec != std::errc() || ptr != t.text.data() + t.text.size()) {
          return Error(t.offset, "integer literal out of range");
        }
        return ExprPtr(std::make_unique<LiteralExpr>(t.offset, Value(v)));
      }
      case TokenKind::kFloat: {
        Next();
        double v = 0;
        const auto [ptr, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (ec != std::errc() && ec != std::errc::result_out_of_range) return Error(t.offset, "bad float literal");
        (void)ptr;
        return ExprPtr(std::make_unique<LiteralExpr>(t.offset, Value(v)));
      }
      case TokenKind::kOperator:
        if (t.text == "(") return ParseParenthesized();
        if (t.text == "[") return ParseList();
        if (t.text == "{") return ParseDict();
        break;
      default:
        break;
    }
    return Unexpected("an expression");
  }

  // (e), (a, b), (a,) or ().
  absl::StatusOr<ExprPtr> ParseParenthesized() {
    const uint32_t offset = Next().offset;
    if (SkipOp(")")) return ExprPtr(std::make_unique<ListExpr>(ExprKind::kTuple, offset));
    TP_ASSIGN_OR_RETURN(ExprPtr first, ParseExpression(true));
    if (SkipOp(")")) return first;
    TP_RETURN_IF_ERROR(ExpectOp(","));
    auto tuple = std::make_unique<ListExpr>(ExprKind::kTuple, offset);
    int height = first->height;
    tuple->items.push_back(std::move(first));
    while (!SkipOp(")")) {
      TP_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
      height = std::max(height, item->height);
      tuple->items.push_back(std::move(item));
      if (!IsOp(")")) TP_RETURN_IF_ERROR(ExpectOp(","));
    }
    return Finish(std::move(tuple), height);
  }

  absl::StatusOr<ExprPtr> ParseList() {
    auto list = std::make_unique<ListExpr>(ExprKind::kList, Next().offset);
    int height = 0;
    while (!SkipOp("]")) {
      TP_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
      height = std::max(height, item->height);
      list->items.push_back(std::move(item));
      if (!IsOp("]")) TP_RETURN_IF_ERROR(ExpectOp(","));
    }
    return Finish(std::move(list), height);
  }

  absl::StatusOr<ExprPtr> ParseDict() {
    auto dict = std::make_unique<DictExpr>(Next().offset);
    int height = 0;
    while (!SkipOp("}")) {
      TP_ASSIGN_OR_RETURN(ExprPtr key, ParseExpression(true));
      TP_RETURN_IF_ERROR(ExpectOp(":"));
      TP_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
      height = std::max({height, key->height, value->height});
      dict->items.emplace_back(std::move(key), std::move(value));
      if (!IsOp("}")) TP_RETURN_IF_ERROR(ExpectOp(","));
    }
    return Finish(std::move(dict), height);
  }

  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr e) {
    while (true) {
      if (IsOp(".")) {
        const uint32_t offset = Next().offset;
        const Token& t = Next();
        const int h = e->height;
        if (t.kind == TokenKind::kName) {
          TP_ASSIGN_OR_RETURN(e, Finish(std::make_unique<GetAttrExpr>(offset, std::move(e), t.text), h));
        } else if (t.kind == TokenKind::kInt) {
          int64_t index = 0;
          std::from_chars(t.text.data(), t.text.data() + t.text.size(), index);
          auto literal = std::make_unique<LiteralExpr>(t.offset, Value(index));
          TP_ASSIGN_OR_RETURN(e, Finish(std::make_unique<GetItemExpr>(offset, std::move(e), std::move(literal)), h));
        } else {
          return Error(t.offset, "expected an attribute name after '.'");
        }
      } else if (IsOp("[")) {
        TP_ASSIGN_OR_RETURN(e, ParseSubscript(std::move(e)));
      } else if (IsOp("(")) {
        TP_ASSIGN_OR_RETURN(e, ParseCall(std::move(e)));
      } else {
        return e;
      }
    }
  }

  // e[index] or e[start:stop:step].
  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr e) {
    const uint32_t offset = Next().offset;
    ExprPtr parts[3];
    int colons = 0;
    while (!IsOp("]")) {
      if (SkipOp(":")) {
        if (++colons > 2) return Error(offset, "too many ':' in slice");
        continue;
      }
      if (parts[colons] != nullptr) return Unexpected("']'");
      TP_ASSIGN_OR_RETURN(parts[colons], ParseExpression(true));
    }
    Next();
    const int h = std::max({e->height, HeightOf(parts[0]), HeightOf(parts[1]), HeightOf(parts[2])});
    if (colons == 0) {
      if (parts[0] == nullptr) return Error(offset, "empty subscript");
      return Finish(std::make_unique<GetItemExpr>(offset, std::move(e), std::move(parts[0])), h);
    }
    auto slice = std::make_unique<SliceExpr>(offset);
    slice->object = std::move(e);
    slice->start = std::move(parts[0]);
    slice->stop = std::move(parts[1]);
    slice->step = std::move(parts[2]);
    return Finish(std::move(slice), h);
  }

  absl::Status ParseArguments(Arguments& args) {
    TP_RETURN_IF_ERROR(ExpectOp("("));
    while (!SkipOp(")")) {
      if (Peek().kind == TokenKind::kName && IsOp("=", 1)) {
        std::string name = Next().text;
        Next();
        TP_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        args.keyword.emplace_back(std::move(name), std::move(value));
      } else {
        if (!args.keyword.empty()) return Error(Peek().offset, "positional argument follows keyword argument");
        TP_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        args.positional.push_back(std::move(value));
      }
      if (!IsOp(")")) TP_RETURN_IF_ERROR(ExpectOp(","));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<ExprPtr> ParseCall(ExprPtr callee) {
    auto call = std::make_unique<CallExpr>(Peek().offset);
    TP_RETURN_IF_ERROR(ParseArguments(call->args));
    const int h = std::max(callee->height, HeightOf(call->args));
    call->callee = std::move(callee);
    return Finish(std::move(call), h);
  }

  // A (possibly dotted) filter or test name.
  absl::StatusOr<std::string> ParseDottedName() {
    TP_ASSIGN_OR_RETURN(std::string name, ExpectName());
    while (IsOp(".") && Peek(1).kind == TokenKind::kName) {
      Next();
      name += "." + Next().text;
    }
    return name;
  }

  // After '|': name, optional arguments.
  absl::StatusOr<ExprPtr> ParseFilter(ExprPtr operand) {
    auto filter = std::make_unique<FilterExpr>(Peek().offset);
    TP_ASSIGN_OR_RETURN(filter->name, ParseDottedName());
    if (!IsKnownFilter(filter->name)) {
      if (!soft_) unknown_names_.push_back(Error(filter->offset, fmt::format("no filter named '{}'", filter->name)));
      filter->known = false;
    }
    if (IsOp("(")) TP_RETURN_IF_ERROR(ParseArguments(filter->args));
    const int h = std::max(operand->height, HeightOf(filter->args));
    filter->operand = std::move(operand);
    return Finish(std::move(filter), h);
  }

  // At 'is': [not] name, then (args) or one bare argument (`is divisibleby 3`).
  absl::StatusOr<ExprPtr> ParseTest(ExprPtr operand) {
    auto test = std::make_unique<TestExpr>(Next().offset);
    test->negated = SkipName("not");
    TP_ASSIGN_OR_RETURN(test->name, ParseDottedName());
    if (!IsKnownTest(test->name)) {
      if (!soft_) unknown_names_.push_back(Error(test->offset, fmt::format("no test named '{}'", test->name)));
      test->known = false;
    }
    const Token& t = Peek();
    if (IsOp("(")) {
      TP_RETURN_IF_ERROR(ParseArguments(test->args));
    } else if ((t.kind == TokenKind::kName || t.kind == TokenKind::kString || t.kind == TokenKind::kInt ||
                t.kind == TokenKind::kFloat || IsOp("[") || IsOp("{")) &&
               !IsName("else") && !IsName("or") && !IsName("and")) {
      if (IsName("is")) return Error(t.offset, "tests cannot be chained with 'is'");
      TP_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
      TP_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
      test->args.positional.push_back(std::move(arg));
    }
    const int h = std::max(operand->height, HeightOf(test->args));
    test->operand = std::move(operand);
    return Finish(std::move(test), h);
  }

  std::string source_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  bool soft_ = false;
  std::string end_tag_;
  // Unknown filters and tests outside conditionals: errors once parsing ends, unless a
  // conditional expression turns out to enclose them.
  std::vector<absl::Status> unknown_names_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<const Template>> ParseTemplate(std::string_view source) {
  TP_ASSIGN_OR_RETURN(LexedTemplate lexed, Tokenize(source));
  return Parser(std::move(lexed)).Run();
}

}  // namespace triplane::engine::chat::jinja
