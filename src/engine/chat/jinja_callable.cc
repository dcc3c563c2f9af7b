#include "engine/chat/jinja_callable.h"

#include <fmt/format.h>

#include <algorithm>

#include "absl/status/status.h"

namespace triplane::engine::chat::jinja {

const Value* CallArgs::FindKeyword(std::string_view name) const {
  for (const auto& [key, value] : keyword) {
    if (key == name) return &value;
  }
  return nullptr;
}

const Value* CallArgs::Get(size_t index, std::string_view name) const {
  if (index < positional.size()) return &positional[index];
  return name.empty() ? nullptr : FindKeyword(name);
}

absl::Status CallArgs::Check(std::string_view function, size_t max_positional,
                             std::initializer_list<std::string_view> names) const {
  if (positional.size() > max_positional) {
    return absl::InvalidArgumentError(fmt::format("{}() takes at most {} positional argument(s), {} given",
                                                  function, max_positional, positional.size()));
  }
  for (const auto& [key, value] : keyword) {
    if (std::find(names.begin(), names.end(), key) == names.end()) {
      return absl::InvalidArgumentError(
          fmt::format("{}() got an unexpected keyword argument '{}'", function, key));
    }
  }
  return absl::OkStatus();
}

}  // namespace triplane::engine::chat::jinja
