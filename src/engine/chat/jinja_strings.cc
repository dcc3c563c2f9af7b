#include "engine/chat/jinja_strings.h"

#include <fmt/format.h>
#include <unicode/uchar.h>

#include <algorithm>
#include <charconv>

#include "absl/status/status.h"
#include "engine/tokenizer/unicode.h"

namespace triplane::engine::chat::jinja {
namespace {

char32_t Upper(char32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') ? cp - 32 : cp;
  return static_cast<char32_t>(u_toupper(static_cast<UChar32>(cp)));
}

char32_t Lower(char32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  return static_cast<char32_t>(u_tolower(static_cast<UChar32>(cp)));
}

bool IsCased(char32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  return u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_CASED) != 0;
}

bool IsLineBreak(char32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || (cp >= 0x1c && cp <= 0x1e) ||
         cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

}  // namespace

std::string PyStrip(std::string_view s, std::optional<std::string_view> chars, bool left, bool right) {
  const std::u32string text = DecodeUtf8(s);
  const std::u32string set = chars ? DecodeUtf8(*chars) : std::u32string();
  auto drop = [&](char32_t cp) { return chars ? set.find(cp) != std::u32string::npos : IsPythonSpace(cp); };
  size_t begin = 0;
  size_t end = text.size();
  if (left) {
    while (begin < end && drop(text[begin])) ++begin;
  }
  if (right) {
    while (end > begin && drop(text[end - 1])) --end;
  }
  return EncodeUtf8(std::u32string_view(text).substr(begin, end - begin));
}

absl::StatusOr<std::vector<std::string>> PySplit(std::string_view s, std::optional<std::string_view> sep,
                                                 int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (sep) {
    if (sep->empty()) return absl::InvalidArgumentError("empty separator");
    if (!from_right) {
      size_t pos = 0;
      while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
        const size_t hit = s.find(*sep, pos);
        if (hit == std::string_view::npos) break;
        parts.emplace_back(s.substr(pos, hit - pos));
        pos = hit + sep->size();
      }
      parts.emplace_back(s.substr(pos));
      return parts;
    }
    size_t end = s.size();
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      if (end < sep->size()) break;
      const size_t hit = s.rfind(*sep, end - sep->size());
      if (hit == std::string_view::npos) break;
      parts.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
      end = hit;
    }
    parts.emplace_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
    return parts;
  }
  // Whitespace runs; leading and trailing whitespace yield no empty parts.
  std::u32string text = DecodeUtf8(s);
  if (from_right) std::reverse(text.begin(), text.end());
  size_t i = 0;
  while (true) {
    while (i < text.size() && IsPythonSpace(text[i])) ++i;
    if (i >= text.size()) break;
    size_t j = i;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit) {
      j = text.size();
      // The remainder keeps its inner whitespace but not trailing whitespace.
      while (j > i && IsPythonSpace(text[j - 1])) --j;
    } else {
      while (j < text.size() && !IsPythonSpace(text[j])) ++j;
    }
    std::u32string part = text.substr(i, j - i);
    if (from_right) std::reverse(part.begin(), part.end());
    parts.push_back(EncodeUtf8(part));
    i = j;
  }
  if (from_right) std::reverse(parts.begin(), parts.end());
  return parts;
}

std::vector<std::string> PySplitLines(std::string_view s) {
  const std::u32string text = DecodeUtf8(s);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!IsLineBreak(text[i])) continue;
    lines.push_back(EncodeUtf8(std::u32string_view(text).substr(start, i - start)));
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < text.size()) lines.push_back(EncodeUtf8(std::u32string_view(text).substr(start)));
  return lines;
}

std::string PyUpper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : DecodeUtf8(s)) AppendUtf8(Upper(cp), out);
  return out;
}

std::string PyLower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : DecodeUtf8(s)) AppendUtf8(Lower(cp), out);
  return out;
}

std::string PyCapitalize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool first = true;
  for (char32_t cp : DecodeUtf8(s)) {
    AppendUtf8(first ? Upper(cp) : Lower(cp), out);
    first = false;
  }
  return out;
}

std::string PyTitle(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool previous_cased = false;
  for (char32_t cp : DecodeUtf8(s)) {
    AppendUtf8(previous_cased ? Lower(cp) : Upper(cp), out);
    previous_cased = IsCased(cp);
  }
  return out;
}

absl::StatusOr<std::string> PyReplace(std::string_view s, std::string_view old, std::string_view repl,
                                      int64_t count, size_t max_size) {
  std::string out;
  auto append = [&](std::string_view piece) -> absl::Status {
    if (out.size() + piece.size() > max_size) {
      return absl::InvalidArgumentError(fmt::format("replace result over {} bytes", max_size));
    }
    out += piece;
    return absl::OkStatus();
  };
  int64_t done = 0;
  if (old.empty()) {
    size_t pos = 0;
    while (pos <= s.size()) {
      if (count < 0 || done < count) {
        if (absl::Status st = append(repl); !st.ok()) return st;
        ++done;
      }
      if (pos == s.size()) break;
      const size_t size = std::max<size_t>(ReadUtf8(s, pos).size, 1);
      if (absl::Status st = append(s.substr(pos, size)); !st.ok()) return st;
      pos += size;
    }
    return out;
  }
  size_t pos = 0;
  while (count < 0 || done < count) {
    const size_t hit = s.find(old, pos);
    if (hit == std::string_view::npos) break;
    if (absl::Status st = append(s.substr(pos, hit - pos)); !st.ok()) return st;
    if (absl::Status st = append(repl); !st.ok()) return st;
    pos = hit + old.size();
    ++done;
  }
  if (absl::Status st = append(s.substr(pos)); !st.ok()) return st;
  return out;
}

absl::StatusOr<std::string> PyFormat(std::string_view format, const ValueList& args,
                                     const std::vector<std::pair<std::string, Value>>& kwargs,
                                     WorkBudget& budget) {
  std::string out;
  size_t next_auto = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') {
        out.push_back('}');
        ++i;
        continue;
      }
      return absl::InvalidArgumentError("format: single '}' encountered");
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    const size_t close = format.find('}', i);
    if (close == std::string_view::npos) return absl::InvalidArgumentError("format: unmatched '{'");
    std::string_view field = format.substr(i + 1, close - i - 1);
    i = close;
    bool repr = false;
    if (const size_t colon = field.find(':'); colon != std::string_view::npos) {
      if (colon + 1 != field.size()) return absl::InvalidArgumentError("format: format specs are not supported");
      field = field.substr(0, colon);
    }
    if (const size_t bang = field.find('!'); bang != std::string_view::npos) {
      const std::string_view conversion = field.substr(bang + 1);
      if (conversion != "s" && conversion != "r") return absl::InvalidArgumentError("format: bad conversion");
      repr = conversion == "r";
      field = field.substr(0, bang);
    }
    const Value* value = nullptr;
    if (field.empty()) {
      if (next_auto >= args.size()) return absl::InvalidArgumentError("format: not enough positional arguments");
      value = &args[next_auto++];
    } else if (field[0] >= '0' && field[0] <= '9') {
      size_t index = 0;
      const auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), index);
      if (ec != std::errc() || ptr != field.data() + field.size() || index >= args.size()) {
        return absl::InvalidArgumentError(fmt::format("format: no positional argument {}", field));
      }
      value = &args[index];
    } else {
      for (const auto& [name, v] : kwargs) {
        if (name == field) value = &v;
      }
      if (value == nullptr) return absl::InvalidArgumentError(fmt::format("format: no argument '{}'", field));
    }
    if (repr) {
      out += Repr(*value, budget);
    } else {
      AppendStr(*value, out, budget);
    }
    if (out.size() > budget.max_string_bytes()) return absl::InvalidArgumentError("format result too large");
  }
  return out;
}

}  // namespace triplane::engine::chat::jinja
