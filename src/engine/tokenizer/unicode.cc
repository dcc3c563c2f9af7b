#include "engine/tokenizer/unicode.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#include <unicode/uchar.h>

#include <array>

namespace triplane::engine {
namespace {

CharClass ClassifyWithIcu(char32_t cp) {
  const auto c = static_cast<UChar32>(cp);
  if (u_isUWhiteSpace(c)) return CharClass::kWhitespace;
  const uint32_t mask = U_GET_GC_MASK(c);
  if (mask & U_GC_L_MASK) return CharClass::kLetter;
  if (mask & U_GC_N_MASK) return CharClass::kNumber;
  return CharClass::kOther;
}

// ASCII is most of the text the tokenizer sees; answer it without calling ICU.
const std::array<CharClass, 128>& AsciiClasses() {
  static const std::array<CharClass, 128> table = [] {
    std::array<CharClass, 128> t{};
    for (char32_t c = 0; c < 128; ++c) t[c] = ClassifyWithIcu(c);
    return t;
  }();
  return table;
}

bool IsContinuation(unsigned char b) { return (b & 0xC0) == 0x80; }

}  // namespace

CharClass ClassifyCodePoint(char32_t cp) {
  if (cp < 128) return AsciiClasses()[cp];
  return ClassifyWithIcu(cp);
}

bool IsPunctuation(char32_t cp) {
  return (U_GET_GC_MASK(static_cast<UChar32>(cp)) & U_GC_P_MASK) != 0;
}

Utf8Sequence ReadUtf8(std::string_view s, size_t pos) {
  using Kind = Utf8Sequence::Kind;
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) return {Kind::kValid, 1, b0};
  uint32_t need = 0;
  char32_t cp = 0;
  // Bounds of the second byte rule out overlong forms, surrogates and > U+10FFFF.
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {Kind::kInvalid, 1, 0};
  }
  for (uint32_t i = 1; i < need; ++i) {
    if (pos + i >= s.size()) return {Kind::kIncomplete, i, 0};
    const auto b = static_cast<unsigned char>(s[pos + i]);
    const bool ok = i == 1 ? (b >= lo && b <= hi) : IsContinuation(b);
    if (!ok) return {Kind::kInvalid, i, 0};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Kind::kValid, need, cp};
}

void AppendUtf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsValidUtf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    if (static_cast<unsigned char>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Utf8Sequence seq = ReadUtf8(s, pos);
    if (seq.kind != Utf8Sequence::Kind::kValid) return false;
    pos += seq.size;
  }
  return true;
}

std::string ToValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const Utf8Sequence seq = ReadUtf8(s, pos);
    if (seq.kind == Utf8Sequence::Kind::kValid) {
      out.append(s.substr(pos, seq.size));
    } else {
      AppendUtf8(kReplacementChar, out);
    }
    pos += seq.size;
  }
  return out;
}

void AppendNfc(std::string_view s, std::string& out) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  const icu::StringPiece piece(s.data(), static_cast<int32_t>(s.size()));
  if (U_FAILURE(status) || s.size() > INT32_MAX || nfc->isNormalizedUTF8(piece, status) ||
      U_FAILURE(status) || !IsValidUtf8(s)) {
    out.append(s);
    return;
  }
  std::string normalized;
  icu::StringByteSink<std::string> sink(&normalized);
  nfc->normalizeUTF8(0, piece, sink, nullptr, status);
  out.append(U_SUCCESS(status) ? std::string_view(normalized) : s);
}

}  // namespace triplane::engine
