#pragma once

// Where tests find llama.cpp's source tree (cloned by scripts/llama-cpp-source from the git
// bundle that npm's node-llama-cpp ships): its vocabulary files and test vectors
// (models/ggml-vocab-*.gguf{,.inp,.out}). A missing tree is a test failure with
// instructions, never a skip.

#include <cstdlib>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace triplane::testing {

// $TRIPLANE_LLAMA_CPP_SOURCE, else ${TRIPLANE_CACHE:-$HOME/.cache/triplane}/llama.cpp.
inline std::filesystem::path LlamaCppSourceDir() {
  if (const char* env = std::getenv("TRIPLANE_LLAMA_CPP_SOURCE"); env != nullptr && *env != '\0')
    return env;
  std::filesystem::path cache;
  if (const char* env = std::getenv("TRIPLANE_CACHE"); env != nullptr && *env != '\0') {
    cache = env;
  } else {
    const char* home = std::getenv("HOME");
    cache = std::filesystem::path(home != nullptr ? home : "/nonexistent") / ".cache" / "triplane";
  }
  return cache / "llama.cpp";
}

// Path of llama.cpp's models/ggml-vocab-<name>.gguf; fails the test when it is missing.
inline std::filesystem::path LlamaCppVocabPath(const std::string& name) {
  const std::filesystem::path path =
      LlamaCppSourceDir() / "models" / ("ggml-vocab-" + name + ".gguf");
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "llama.cpp vocabulary " << path
                  << " is missing. Run scripts/setup (npm ci in tests/), "
                  << "then `export TRIPLANE_LLAMA_CPP_SOURCE=$(scripts/llama-cpp-source)`.";
  }
  return path;
}

}  // namespace triplane::testing
