#pragma once

#include <string_view>

namespace triplane::common {

// Facts about this binary, fixed at build time.
struct BuildInfo {
  std::string_view version;     // project version, e.g. "0.1.0"
  std::string_view git_commit;  // short commit id, or "unknown" outside a git checkout
  std::string_view build_type;  // CMAKE_BUILD_TYPE
  std::string_view compiler;
  bool cuda = false;            // built with the CUDA backend
  std::string_view sanitizers;  // e.g. "address,undefined"; empty when none
};

// Thread-safe; the returned object lives for the whole program.
const BuildInfo& GetBuildInfo();

}  // namespace triplane::common
