#pragma once

// Helpers shared by the sql_store*.cc files. Internal to control/store.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/json.h"
#include "common/strings.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace triplane::control::internal {

inline absl::Time FromMicros(int64_t micros) { return absl::FromUnixMicros(micros); }
inline int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }

// Parses JSON the store wrote; a stored value that does not parse is data corruption.
inline absl::Status ParseStored(std::string_view text, std::string_view what, nlohmann::json& out) {
  auto parsed = common::ParseJson(text, 256);
  if (!parsed.ok()) {
    return absl::InternalError(fmt::format("stored {} is not valid JSON: {}", what,
                                           common::ToStd(parsed.status().message())));
  }
  out = *std::move(parsed);
  return absl::OkStatus();
}

inline absl::Status NotFound(std::string_view what, std::string_view name) {
  return absl::NotFoundError(fmt::format("{} '{}' not found", what, name));
}

inline absl::Status AlreadyExists(std::string_view what, std::string_view name) {
  return absl::AlreadyExistsError(fmt::format("{} '{}' already exists", what, name));
}

}  // namespace triplane::control::internal
