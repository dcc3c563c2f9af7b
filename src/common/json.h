#pragma once

// Safe JSON parsing for untrusted input: never throws, bounds nesting depth.

#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace triplane::common {

inline constexpr int kDefaultMaxJsonDepth = 64;

// Parses `text` as one JSON value. Returns InvalidArgument with the parser's position
// and reason on malformed input or on nesting deeper than `max_depth`; never throws.
// Cost: linear in the input.
[[nodiscard]] absl::StatusOr<nlohmann::json> ParseJson(std::string_view text,
                                                       int max_depth = kDefaultMaxJsonDepth);

// Serialises `value`, replacing invalid UTF-8 instead of throwing.
std::string DumpJson(const nlohmann::json& value, int indent = -1);

}  // namespace triplane::common
