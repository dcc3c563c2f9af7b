#pragma once

// Python's str methods on UTF-8 text, shared by the filters and the str methods of
// templates. Whitespace is Python's str.isspace(); case mapping is ICU's simple
// (one code point to one) mapping.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/chat/jinja_value.h"

namespace triplane::engine::chat::jinja {

// str.strip / lstrip / rstrip: `chars` (code points to drop) or whitespace when nullopt.
std::string PyStrip(std::string_view s, std::optional<std::string_view> chars, bool left, bool right);

// str.split(sep, maxsplit) (sep nullopt: runs of whitespace, empty parts dropped);
// `from_right` for str.rsplit. InvalidArgument for an empty separator.
absl::StatusOr<std::vector<std::string>> PySplit(std::string_view s, std::optional<std::string_view> sep,
                                                 int64_t maxsplit, bool from_right);

// str.splitlines(): splits at \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, \u2028, \u2029.
std::vector<std::string> PySplitLines(std::string_view s);

std::string PyUpper(std::string_view s);
std::string PyLower(std::string_view s);
// str.capitalize(): first code point upper case, the rest lower case.
std::string PyCapitalize(std::string_view s);
// str.title(): each run of letters starts upper case and continues lower case.
std::string PyTitle(std::string_view s);

// str.replace(old, new, count); count < 0 replaces all. An empty `old` inserts `repl`
// around every code point, as Python does. Fails past `max_size` bytes.
absl::StatusOr<std::string> PyReplace(std::string_view s, std::string_view old, std::string_view repl,
                                      int64_t count, size_t max_size);

// str.format(*args, **kwargs) for replacement fields {}, {0}, {name} with optional
// attribute/index lookups left out, conversions !s / !r and no format spec beyond an
// empty one. InvalidArgument for anything else.
// Fails past the budget's string cap.
absl::StatusOr<std::string> PyFormat(std::string_view format, const ValueList& args,
                                     const std::vector<std::pair<std::string, Value>>& kwargs,
                                     WorkBudget& budget);

}  // namespace triplane::engine::chat::jinja
