#pragma once

// Small string helpers on std::string_view.
//
// Debian's Abseil is built with its own absl::string_view (not an alias of
// std::string_view), so absl's string utilities do not accept std::string_view. Use
// these helpers and fmt::format instead, and ToStd() for absl::Status::message().

#include <algorithm>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace triplane::common {

inline std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }

inline char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return AsciiLower(x) == AsciiLower(y); });
}

inline std::string AsciiToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

inline bool IsAsciiAlnum(unsigned char c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

}  // namespace triplane::common
