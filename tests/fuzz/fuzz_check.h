#pragma once

// What the fuzz targets share: a failed property check aborts, so that libFuzzer keeps
// the input as a crash.

#include <cstdio>
#include <cstdlib>

namespace triplane::fuzz {

[[noreturn]] inline void Fail(const char* what) {
  std::fprintf(stderr, "fuzz property violated: %s\n", what);
  std::abort();
}

}  // namespace triplane::fuzz
