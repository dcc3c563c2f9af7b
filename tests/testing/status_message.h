#pragma once

// The message of a Status as a std::string, for test failure output and matchers.

#include <string>

#include "absl/status/status.h"

namespace triplane::testing {

inline std::string Message(const absl::Status& status) { return std::string(status.message()); }

}  // namespace triplane::testing
