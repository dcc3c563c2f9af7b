#pragma once

// UTF-8 decoding and the Unicode character classes that pre-tokenizer patterns use
// (\p{L}, \p{N}, \p{P}, \s). Classes come from ICU, not from hand-written tables.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace triplane::engine {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// The class of a code point as the pre-tokenizer regexes see it. Whitespace is Unicode's
// White_Space property (regex \s); letters and numbers are general categories L* and N*;
// everything else (punctuation, symbols, marks, controls, unassigned) is kOther.
enum class CharClass : uint8_t { kOther, kLetter, kNumber, kWhitespace };

// Class of `cp`. Thread-safe; ASCII from a table, the rest one ICU property lookup.
CharClass ClassifyCodePoint(char32_t cp);

// True for general category P* (regex \p{P}).
bool IsPunctuation(char32_t cp);

// Outcome of reading one UTF-8 sequence: `size` bytes starting at the position.
struct Utf8Sequence {
  enum class Kind : uint8_t {
    kValid,       // a complete, well-formed sequence of `size` bytes encoding `cp`
    kInvalid,     // `size` bytes (at least 1) that can never be part of a valid sequence
    kIncomplete,  // a valid prefix of `size` bytes that runs into the end of the input
  };
  Kind kind = Kind::kInvalid;
  uint32_t size = 0;
  char32_t cp = 0;
};

// Reads the sequence at s[pos] (REQUIRES: pos < s.size()). Rejects overlong forms,
// surrogates and code points above U+10FFFF; an invalid sequence spans its maximal
// valid prefix (at least one byte), as in Unicode's "substitution of maximal subparts".
Utf8Sequence ReadUtf8(std::string_view s, size_t pos);

// Appends the UTF-8 encoding of `cp` (REQUIRES: a valid scalar value).
void AppendUtf8(char32_t cp, std::string& out);

// True if `s` is entirely well-formed UTF-8.
bool IsValidUtf8(std::string_view s);

// `s` with every invalid or truncated sequence replaced by U+FFFD.
std::string ToValidUtf8(std::string_view s);

// Appends `s` in Unicode Normalization Form C (ICU). Text that is already NFC (most text)
// or not valid UTF-8 is appended unchanged. Cost: one quick check pass when unchanged.
void AppendNfc(std::string_view s, std::string& out);

}  // namespace triplane::engine
