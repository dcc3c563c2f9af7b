#include "common/json.h"

#include <exception>

#include "fmt/format.h"

namespace triplane::common {

namespace {

// True when brackets outside strings nest deeper than `max_depth`. Checked before
// parsing because the parser keeps a stack entry per level even for the levels the
// depth callback discards: 10 MB of '[' would cost it 80 MB.
bool NestsDeeperThan(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char ch : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
      }
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > max_depth) return true;
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<nlohmann::json> ParseJson(std::string_view text, int max_depth) {
  if (NestsDeeperThan(text, max_depth)) {
    return absl::InvalidArgumentError(fmt::format("JSON nests deeper than {} levels", max_depth));
  }
  bool too_deep = false;
  auto limit_depth = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start ||
         event == nlohmann::json::parse_event_t::array_start) &&
        depth >= max_depth) {
      too_deep = true;
    }
    return !too_deep;
  };
  try {
    nlohmann::json value = nlohmann::json::parse(text.begin(), text.end(), limit_depth,
                                                 /*allow_exceptions=*/true,
                                                 /*ignore_comments=*/false);
    if (too_deep) {
      return absl::InvalidArgumentError(
          fmt::format("JSON nests deeper than {} levels", max_depth));
    }
    return value;
  } catch (const nlohmann::json::exception& e) {
    if (too_deep) {
      return absl::InvalidArgumentError(
          fmt::format("JSON nests deeper than {} levels", max_depth));
    }
    // e.what() reads like "[json.exception.parse_error.101] parse error at line 1, ...".
    std::string_view what = e.what();
    if (size_t close = what.find("] "); close != std::string_view::npos) {
      what.remove_prefix(close + 2);
    }
    return absl::InvalidArgumentError(fmt::format("invalid JSON: {}", what));
  }
}

std::string DumpJson(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace triplane::common
