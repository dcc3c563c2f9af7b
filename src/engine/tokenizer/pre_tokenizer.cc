#include "engine/tokenizer/pre_tokenizer.h"

#include <cstdint>
#include <span>

#include "engine/tokenizer/unicode.h"

namespace triplane::engine {
namespace {

// One code point of the input with its class and its byte offset in the text.
struct Char {
  char32_t cp;
  CharClass cls;
  uint32_t offset;
};

// A fragment of the input as a regex sees it: positions past the end read as "nothing"
// (no class, no code point), which is how lookaheads see the end of the text.
class Fragment {
 public:
  explicit Fragment(std::span<const Char> chars) : chars_(chars) {}
  size_t size() const { return chars_.size(); }
  bool Is(size_t i, CharClass cls) const { return i < chars_.size() && chars_[i].cls == cls; }
  char32_t At(size_t i) const { return i < chars_.size() ? chars_[i].cp : 0; }
  bool IsNewline(size_t i) const { return At(i) == '\r' || At(i) == '\n'; }
  // Length of the run of `cls` starting at `i`.
  size_t Run(size_t i, CharClass cls) const {
    size_t j = i;
    while (Is(j, cls)) ++j;
    return j - i;
  }

 private:
  std::span<const Char> chars_;
};

// The alternatives the supported regexes are made of. Each matcher returns the length of
// its match at `pos`, 0 when it does not match there.
enum class Rule {
  kContraction,              // 's|'t|'re|'ve|'m|'ll|'d
  kContractionAnyCase,       // (?i:'s|'t|'re|'ve|'m|'ll|'d)
  kSpaceLetters,             //  ?\p{L}+
  kSpaceNumbers,             //  ?\p{N}+
  kSpaceOthers,              //  ?[^\s\p{L}\p{N}]+
  kSpaceOthersNewlines,      //  ?[^\s\p{L}\p{N}]+[\r\n]*
  kPrefixedLetters,          // [^\r\n\p{L}\p{N}]?\p{L}+
  kDigits1,                  // \p{N}
  kDigits3,                  // \p{N}{1,3}
  kNumbers,                  // \p{N}+
  kSpacesThenNewlines,       // \s*[\r\n]+
  kSpacesNotBeforeNonSpace,  // \s+(?!\S)
  kSpaces,                   // \s+
  kPunctuation,              // [\p{P}\$\+<=>\^~\|]+
  kThreeAsciiDigits,         // [0-9][0-9][0-9]
};

char32_t AsciiLower(char32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

size_t MatchContraction(const Fragment& f, size_t pos, bool any_case) {
  if (f.At(pos) != '\'') return 0;
  auto at = [&](size_t i) { return any_case ? AsciiLower(f.At(i)) : f.At(i); };
  const char32_t a = at(pos + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  const char32_t b = at(pos + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

//  ?X+ : an optional space, then a run of class X.
size_t MatchSpaceRun(const Fragment& f, size_t pos, CharClass cls) {
  const size_t start = (f.At(pos) == ' ' && f.Is(pos + 1, cls)) ? pos + 1 : pos;
  const size_t run = f.Run(start, cls);
  return run == 0 ? 0 : start - pos + run;
}

bool IsPunctuationRunChar(char32_t cp) {
  switch (cp) {
    case '$':
    case '+':
    case '<':
    case '=':
    case '>':
    case '^':
    case '~':
    case '|':
      return true;
    default:
      return IsPunctuation(cp);
  }
}

size_t Match(Rule rule, const Fragment& f, size_t pos) {
  switch (rule) {
    case Rule::kContraction:
      return MatchContraction(f, pos, /*any_case=*/false);
    case Rule::kContractionAnyCase:
      return MatchContraction(f, pos, /*any_case=*/true);
    case Rule::kSpaceLetters:
      return MatchSpaceRun(f, pos, CharClass::kLetter);
    case Rule::kSpaceNumbers:
      return MatchSpaceRun(f, pos, CharClass::kNumber);
    case Rule::kSpaceOthers:
      return MatchSpaceRun(f, pos, CharClass::kOther);
    case Rule::kSpaceOthersNewlines: {
      size_t n = MatchSpaceRun(f, pos, CharClass::kOther);
      if (n == 0) return 0;
      while (f.IsNewline(pos + n)) ++n;
      return n;
    }
    case Rule::kPrefixedLetters: {
      if (f.Is(pos, CharClass::kLetter)) return f.Run(pos, CharClass::kLetter);
      // The optional prefix is any one character but \r, \n, a letter or a number.
      if (pos >= f.size() || f.IsNewline(pos) || f.Is(pos, CharClass::kNumber)) return 0;
      const size_t run = f.Run(pos + 1, CharClass::kLetter);
      return run == 0 ? 0 : 1 + run;
    }
    case Rule::kDigits1:
      return f.Is(pos, CharClass::kNumber) ? 1 : 0;
    case Rule::kDigits3: {
      const size_t run = f.Run(pos, CharClass::kNumber);
      return run < 3 ? run : 3;
    }
    case Rule::kNumbers:
      return f.Run(pos, CharClass::kNumber);
    case Rule::kSpacesThenNewlines: {
      // \s* backtracks to the last \r or \n of the whitespace run.
      size_t end = 0;
      for (size_t i = pos; f.Is(i, CharClass::kWhitespace); ++i) {
        if (f.IsNewline(i)) end = i + 1;
      }
      return end == 0 ? 0 : end - pos;
    }
    case Rule::kSpacesNotBeforeNonSpace: {
      // The whole run at the end of the fragment; otherwise the run but its last
      // character, so that a non-space never follows (needs at least two).
      const size_t run = f.Run(pos, CharClass::kWhitespace);
      if (run == 0) return 0;
      if (pos + run == f.size()) return run;
      return run - 1;
    }
    case Rule::kSpaces:
      return f.Run(pos, CharClass::kWhitespace);
    case Rule::kPunctuation: {
      size_t n = 0;
      while (pos + n < f.size() && IsPunctuationRunChar(f.At(pos + n))) ++n;
      return n;
    }
    case Rule::kThreeAsciiDigits: {
      for (size_t i = 0; i < 3; ++i) {
        const char32_t c = f.At(pos + i);
        if (c < '0' || c > '9') return 0;
      }
      return 3;
    }
  }
  return 0;
}

// One regex: alternatives tried in order at each position.
using Pattern = std::span<const Rule>;

constexpr Rule kGpt2Rules[] = {
    Rule::kContraction,
    Rule::kSpaceLetters,
    Rule::kSpaceNumbers,
    Rule::kSpaceOthers,
    Rule::kSpacesNotBeforeNonSpace,
    Rule::kSpaces,
};
constexpr Rule kLlama3Rules[] = {
    Rule::kContractionAnyCase,
    Rule::kPrefixedLetters,
    Rule::kDigits3,
    Rule::kSpaceOthersNewlines,
    Rule::kSpacesThenNewlines,
    Rule::kSpacesNotBeforeNonSpace,
    Rule::kSpaces,
};
constexpr Rule kQwen2Rules[] = {
    Rule::kContractionAnyCase,
    Rule::kPrefixedLetters,
    Rule::kDigits1,
    Rule::kSpaceOthersNewlines,
    Rule::kSpacesThenNewlines,
    Rule::kSpacesNotBeforeNonSpace,
    Rule::kSpaces,
};
constexpr Rule kPunctuationRules[] = {Rule::kPunctuation};
constexpr Rule kNumbersRules[] = {Rule::kNumbers};
constexpr Rule kThreeDigitsRules[] = {Rule::kThreeAsciiDigits};

// Splits each piece (a span of character indices [begin, end)) by `pattern` the way a
// regex iterator does: every match is a piece, and so is every gap between matches.
std::vector<std::pair<size_t, size_t>> SplitPieces(
    std::span<const Char> chars, const std::vector<std::pair<size_t, size_t>>& pieces,
    Pattern pattern) {
  std::vector<std::pair<size_t, size_t>> out;
  out.reserve(pieces.size() * 2);
  for (const auto& [begin, end] : pieces) {
    const Fragment f(chars.subspan(begin, end - begin));
    size_t gap = 0;
    size_t pos = 0;
    while (pos < f.size()) {
      size_t len = 0;
      for (Rule rule : pattern) {
        len = Match(rule, f, pos);
        if (len > 0) break;
      }
      if (len == 0) {
        ++pos;
        continue;
      }
      if (gap < pos) out.emplace_back(begin + gap, begin + pos);
      out.emplace_back(begin + pos, begin + pos + len);
      pos += len;
      gap = pos;
    }
    if (gap < f.size()) out.emplace_back(begin + gap, end);
  }
  return out;
}

}  // namespace

std::vector<std::string_view> PreTokenize(std::string_view text, PreTokenizerType type) {
  std::vector<Char> chars;
  chars.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Sequence seq = ReadUtf8(text, pos);
    const char32_t cp = seq.kind == Utf8Sequence::Kind::kValid ? seq.cp : kReplacementChar;
    chars.push_back({cp, ClassifyCodePoint(cp), static_cast<uint32_t>(pos)});
    pos += seq.size;
  }

  std::vector<std::pair<size_t, size_t>> pieces;
  if (!chars.empty()) pieces.emplace_back(0, chars.size());
  switch (type) {
    case PreTokenizerType::kGpt2:
      pieces = SplitPieces(chars, pieces, kGpt2Rules);
      break;
    case PreTokenizerType::kLlama3:
      pieces = SplitPieces(chars, pieces, kLlama3Rules);
      break;
    case PreTokenizerType::kQwen2:
      pieces = SplitPieces(chars, pieces, kQwen2Rules);
      break;
    case PreTokenizerType::kDefault:
      pieces = SplitPieces(chars, pieces, kPunctuationRules);
      pieces = SplitPieces(chars, pieces, kGpt2Rules);
      pieces = SplitPieces(chars, pieces, kNumbersRules);
      pieces = SplitPieces(chars, pieces, kThreeDigitsRules);
      break;
  }

  std::vector<std::string_view> words;
  words.reserve(pieces.size());
  for (const auto& [begin, end] : pieces) {
    const size_t from = chars[begin].offset;
    const size_t to = end < chars.size() ? chars[end].offset : text.size();
    words.push_back(text.substr(from, to - from));
  }
  return words;
}

}  // namespace triplane::engine
