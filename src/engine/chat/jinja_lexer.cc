#include "engine/chat/jinja_lexer.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "absl/status/status.h"
#include "engine/chat/jinja_value.h"
#include "engine/tokenizer/unicode.h"

namespace triplane::engine::chat::jinja {
namespace {

enum class TagKind : uint8_t { kExpr, kBlock, kComment };

bool IsAsciiSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }

// Python's \s on str: the code points str.isspace() accepts.
size_t SkipSpaceForward(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    const Utf8Sequence seq = ReadUtf8(s, pos);
    if (seq.kind != Utf8Sequence::Kind::kValid || !IsPythonSpace(seq.cp)) break;
    pos += seq.size;
  }
  return pos;
}

// Python's str.rstrip(): drops trailing whitespace.
std::string_view RstripSpace(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xc0) == 0x80) --start;
    const Utf8Sequence seq = ReadUtf8(s, start);
    if (seq.kind != Utf8Sequence::Kind::kValid || start + seq.size != end || !IsPythonSpace(seq.cp)) break;
    end = start;
  }
  return s.substr(0, end);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  explicit Lexer(std::string source) { out_.source = std::move(source); }

  absl::StatusOr<LexedTemplate> Run() {
    const std::string_view src = out_.source;
    size_t pos = 0;
    bool line_starting = true;
    while (true) {
      const size_t tag = FindTag(pos);
      std::string_view text = src.substr(pos, tag == std::string_view::npos ? std::string_view::npos : tag - pos);
      if (tag == std::string_view::npos) {
        Emit(TokenKind::kText, text, pos);
        break;
      }
      const TagKind kind = src[tag + 1] == '{' ? TagKind::kExpr : (src[tag + 1] == '%' ? TagKind::kBlock : TagKind::kComment);
      const char sign = tag + 2 < src.size() ? src[tag + 2] : '\0';
      if (sign == '-') {
        text = RstripSpace(text);
      } else if (sign != '+' && kind != TagKind::kExpr) {
        // lstrip_blocks: drop the tag's indentation when only whitespace precedes it on its line.
        const size_t newline = text.rfind('\n');
        const size_t line_start = newline == std::string_view::npos ? 0 : newline + 1;
        if ((line_start > 0 || line_starting) &&
            SkipSpaceForward(text, line_start) == text.size()) {
          text = text.substr(0, line_start);
        }
      }
      Emit(TokenKind::kText, text, pos);
      size_t body = tag + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      absl::StatusOr<size_t> end = kind == TagKind::kComment ? LexComment(tag, body)
                                   : IsRawBegin(kind, body)         ? LexRaw(tag, body)
                                                              : LexTag(kind, tag, body);
      if (!end.ok()) return end.status();
      pos = *end;
      line_starting = pos > 0 && src[pos - 1] == '\n';
    }
    out_.tokens.push_back({TokenKind::kEnd, "", static_cast<uint32_t>(src.size())});
    return std::move(out_);
  }

 private:
  // The next "{{", "{%" or "{#" at or after `pos`, or npos.
  size_t FindTag(size_t pos) const {
    const std::string_view src = out_.source;
    for (size_t i = src.find('{', pos); i != std::string_view::npos; i = src.find('{', i + 1)) {
      if (i + 1 < src.size() && (src[i + 1] == '{' || src[i + 1] == '%' || src[i + 1] == '#')) return i;
    }
    return std::string_view::npos;
  }

  void Emit(TokenKind kind, std::string_view text, size_t offset) {
    if (kind == TokenKind::kText && text.empty()) return;
    out_.tokens.push_back({kind, std::string(text), static_cast<uint32_t>(offset)});
  }

  absl::Status Error(size_t offset, std::string_view message) const {
    return absl::InvalidArgumentError(
        fmt::format("{}: {}", DescribePosition(out_.source, static_cast<uint32_t>(offset)), message));
  }

  // After a block or comment end: `-` strips all following whitespace, trim_blocks one
  // newline unless `+` was given.
  size_t AfterTagEnd(size_t end, char sign) const {
    const std::string_view src = out_.source;
    if (sign == '-') return SkipSpaceForward(src, end);
    if (sign != '+' && end < src.size() && src[end] == '\n') return end + 1;
    return end;
  }

  absl::StatusOr<size_t> LexComment(size_t tag, size_t body) {
    const std::string_view src = out_.source;
    const size_t close = src.find("#}", body);
    if (close == std::string_view::npos) return Error(tag, "unterminated comment");
    const char sign = close > body && (src[close - 1] == '-' || src[close - 1] == '+') ? src[close - 1] : '\0';
    return AfterTagEnd(close + 2, sign);
  }

  // True if the tag whose content starts at `body` is `{% raw %}`.
  bool IsRawBegin(TagKind kind, size_t body) const {
    if (kind != TagKind::kBlock) return false;
    const std::string_view src = out_.source;
    size_t p = body;
    while (p < src.size() && IsAsciiSpace(src[p])) ++p;
    if (src.compare(p, 3, "raw") != 0 || (p + 3 < src.size() && IsNameChar(src[p + 3]))) return false;
    p += 3;
    while (p < src.size() && IsAsciiSpace(src[p])) ++p;
    if (p < src.size() && (src[p] == '-' || src[p] == '+')) ++p;
    return src.compare(p, 2, "%}") == 0;
  }

  // {% raw %}...{% endraw %}: the content is text, tags in it are not interpreted.
  absl::StatusOr<size_t> LexRaw(size_t tag, size_t body) {
    const std::string_view src = out_.source;
    size_t open_end = src.find("%}", body);
    const char open_sign = src[open_end - 1];
    size_t content = AfterTagEnd(open_end + 2, open_sign == '-' || open_sign == '+' ? open_sign : '\0');
    for (size_t p = src.find("{%", content); p != std::string_view::npos; p = src.find("{%", p + 2)) {
      size_t q = p + 2;
      const char begin_sign = q < src.size() ? src[q] : '\0';
      if (begin_sign == '-' || begin_sign == '+') ++q;
      while (q < src.size() && IsAsciiSpace(src[q])) ++q;
      if (src.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < src.size() && IsAsciiSpace(src[q])) ++q;
      char end_sign = '\0';
      if (q < src.size() && (src[q] == '-' || src[q] == '+')) end_sign = src[q++];
      if (src.compare(q, 2, "%}") != 0) continue;
      std::string_view text = src.substr(content, p - content);
      if (begin_sign == '-') text = RstripSpace(text);
      Emit(TokenKind::kText, text, content);
      return AfterTagEnd(q + 2, end_sign);
    }
    return Error(tag, "missing {% endraw %}");
  }

  absl::StatusOr<size_t> LexTag(TagKind kind, size_t tag, size_t pos) {
    const std::string_view src = out_.source;
    Emit(kind == TagKind::kExpr ? TokenKind::kExprBegin : TokenKind::kBlockBegin, "", tag);
    std::vector<char> brackets;
    while (true) {
      while (pos < src.size() && IsAsciiSpace(src[pos])) ++pos;
      if (pos >= src.size()) {
        return Error(tag, kind == TagKind::kExpr ? "unterminated '{{'" : "unterminated '{%'");
      }
      if (brackets.empty()) {
        const std::string_view close = kind == TagKind::kExpr ? "}}" : "%}";
        const char c = src[pos];
        const bool signed_close = (c == '-' || c == '+') && src.compare(pos + 1, 2, close) == 0;
        if (signed_close || src.compare(pos, 2, close) == 0) {
          Emit(kind == TagKind::kExpr ? TokenKind::kExprEnd : TokenKind::kBlockEnd, "", pos);
          const size_t end = pos + 2 + (signed_close ? 1 : 0);
          if (kind == TagKind::kExpr) return c == '-' && signed_close ? SkipSpaceForward(src, end) : end;
          return AfterTagEnd(end, signed_close ? c : '\0');
        }
      }
      absl::StatusOr<size_t> next = LexOne(pos, brackets);
      if (!next.ok()) return next.status();
      pos = *next;
    }
  }

  // Lexes one token inside a tag starting at `pos`; returns the position after it.
  absl::StatusOr<size_t> LexOne(size_t pos, std::vector<char>& brackets) {
    const std::string_view src = out_.source;
    const char c = src[pos];
    if (IsNameStart(c)) {
      size_t end = pos + 1;
      while (end < src.size() && IsNameChar(src[end])) ++end;
      Emit(TokenKind::kName, src.substr(pos, end - pos), pos);
      return end;
    }
    if (IsDigit(c)) return LexNumber(pos);
    if (c == '\'' || c == '"') return LexString(pos);
    static constexpr std::array<std::string_view, 6> kTwoChar = {"**", "//", "==", "!=", "<=", ">="};
    for (std::string_view op : kTwoChar) {
      if (src.compare(pos, 2, op) == 0) {
        Emit(TokenKind::kOperator, op, pos);
        return pos + 2;
      }
    }
    if (std::string_view("+-*/%~|.,:()[]{}=<>").find(c) == std::string_view::npos) {
      return Error(pos, fmt::format("unexpected character '{}'", c));
    }
    if (c == '(' || c == '[' || c == '{') {
      if (brackets.size() >= 256) return Error(pos, "brackets nested too deeply");
      brackets.push_back(c == '(' ? ')' : (c == '[' ? ']' : '}'));
    } else if (c == ')' || c == ']' || c == '}') {
      if (brackets.empty() || brackets.back() != c) return Error(pos, fmt::format("unexpected '{}'", c));
      brackets.pop_back();
    }
    Emit(TokenKind::kOperator, src.substr(pos, 1), pos);
    return pos + 1;
  }

  // Digits with optional '_' separators; after a '.' only an integer (`items.0`).
  size_t ScanDigits(size_t pos) const {
    const std::string_view src = out_.source;
    while (pos < src.size() && (IsDigit(src[pos]) || (src[pos] == '_' && pos + 1 < src.size() && IsDigit(src[pos + 1])))) ++pos;
    return pos;
  }

  absl::StatusOr<size_t> LexNumber(size_t pos) {
    const std::string_view src = out_.source;
    const bool after_dot = !out_.tokens.empty() && out_.tokens.back().kind == TokenKind::kOperator &&
                           out_.tokens.back().text == ".";
    size_t end = ScanDigits(pos);
    bool is_float = false;
    if (!after_dot) {
      if (end + 1 < src.size() && src[end] == '.' && IsDigit(src[end + 1])) {
        end = ScanDigits(end + 1);
        is_float = true;
      }
      if (end < src.size() && (src[end] == 'e' || src[end] == 'E')) {
        size_t exp = end + 1;
        if (exp < src.size() && (src[exp] == '+' || src[exp] == '-')) ++exp;
        if (exp < src.size() && IsDigit(src[exp])) {
          end = ScanDigits(exp);
          is_float = true;
        }
      }
    }
    std::string text;
    for (char ch : src.substr(pos, end - pos)) {
      if (ch != '_') text.push_back(ch);
    }
    Emit(is_float ? TokenKind::kFloat : TokenKind::kInt, text, pos);
    return end;
  }

  // A quoted string with Python's escapes (\n, \t, \xHH, \uHHHH, \UHHHHHHHH, octal, ...);
  // unknown escapes keep their backslash, as Python's unicode-escape codec does.
  absl::StatusOr<size_t> LexString(size_t start) {
    const std::string_view src = out_.source;
    const char quote = src[start];
    std::string value;
    size_t pos = start + 1;
    while (true) {
      if (pos >= src.size()) return Error(start, "unterminated string");
      const char c = src[pos];
      if (c == quote) break;
      if (c != '\\') {
        value.push_back(c);
        ++pos;
        continue;
      }
      if (pos + 1 >= src.size()) return Error(start, "unterminated string");
      const char e = src[pos + 1];
      pos += 2;
      switch (e) {
        case '\n': break;
        case '\\': value.push_back('\\'); break;
        case '\'': value.push_back('\''); break;
        case '"': value.push_back('"'); break;
        case 'a': value.push_back('\a'); break;
        case 'b': value.push_back('\b'); break;
        case 'f': value.push_back('\f'); break;
        case 'n': value.push_back('\n'); break;
        case 'r': value.push_back('\r'); break;
        case 't': value.push_back('\t'); break;
        case 'v': value.push_back('\v'); break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t digits = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
          uint32_t cp = 0;
          for (size_t i = 0; i < digits; ++i) {
            const int h = pos + i < src.size() ? HexValue(src[pos + i]) : -1;
            if (h < 0) return Error(pos - 2, fmt::format("truncated \\{} escape in string", e));
            cp = cp * 16 + static_cast<uint32_t>(h);
          }
          pos += digits;
          if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return Error(pos - digits - 2, "escape is not a Unicode scalar value");
          }
          AppendUtf8(static_cast<char32_t>(cp), value);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int i = 0; i < 2 && pos < src.size() && src[pos] >= '0' && src[pos] <= '7'; ++i) {
              cp = cp * 8 + static_cast<uint32_t>(src[pos++] - '0');
            }
            AppendUtf8(static_cast<char32_t>(cp), value);
          } else {
            value.push_back('\\');
            value.push_back(e);
          }
          break;
      }
    }
    Emit(TokenKind::kString, value, start);
    return pos + 1;
  }

  LexedTemplate out_;
};

}  // namespace

std::string DescribePosition(std::string_view source, uint32_t offset) {
  const size_t end = std::min<size_t>(offset, source.size());
  const std::string_view before = source.substr(0, end);
  const size_t line = static_cast<size_t>(std::count(before.begin(), before.end(), '\n')) + 1;
  const size_t newline = before.rfind('\n');
  const std::string_view line_text = before.substr(newline == std::string_view::npos ? 0 : newline + 1);
  return fmt::format("line {}, column {}", line, CodePointCount(line_text) + 1);
}

absl::StatusOr<LexedTemplate> Tokenize(std::string_view source) {
  // Newlines to "\n" and one trailing newline dropped, as jinja2's lexer does first.
  std::string normalized;
  normalized.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      normalized.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      normalized.push_back(source[i]);
    }
  }
  if (!normalized.empty() && normalized.back() == '\n') normalized.pop_back();
  return Lexer(std::move(normalized)).Run();
}

}  // namespace triplane::engine::chat::jinja
