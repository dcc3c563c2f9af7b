#pragma once

// Splits a Jinja template into text and tag tokens, applying the whitespace rules of the
// Hugging Face chat-template environment: trim_blocks (the newline after a block or
// comment tag is dropped), lstrip_blocks (spaces and tabs before a block or comment tag
// on its own line are dropped), `-` and `+` on tags, newlines normalised to "\n" and one
// trailing newline of the template dropped (keep_trailing_newline=False).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace triplane::engine::chat::jinja {

enum class TokenKind : uint8_t {
  kText,        // literal output; `text` is the data after whitespace control
  kExprBegin,   // {{
  kExprEnd,     // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,        // identifier or keyword
  kString,      // string literal; `text` is the unescaped value
  kInt,         // integer literal; `text` holds the digits without '_'
  kFloat,       // float literal; `text` holds the literal without '_'
  kOperator,    // punctuation: ( ) [ ] { } . , : | + - * / // % ** ~ = == != < <= > >=
  kEnd,         // end of the template
};

struct Token {
  TokenKind kind;
  std::string text;
  uint32_t offset;  // byte offset in the normalised source, for error positions
};

// A template source after newline normalisation; token offsets refer to it.
struct LexedTemplate {
  std::string source;
  std::vector<Token> tokens;  // ends with kEnd
};

// Tokenises `source` (REQUIRES: at most 4 GiB). InvalidArgument with "line L, column C"
// for an unterminated tag, comment or string, a bad escape or an unexpected character.
// Cost: linear in the source.
[[nodiscard]] absl::StatusOr<LexedTemplate> Tokenize(std::string_view source);

// "line L, column C" (1-based, columns in code points) of `offset` in `source`.
std::string DescribePosition(std::string_view source, uint32_t offset);

}  // namespace triplane::engine::chat::jinja
