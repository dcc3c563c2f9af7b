#pragma once

// Locates the tokenizer oracles these tests compare against: llama.cpp's vocabulary files
// and test vectors (models/ggml-vocab-*.gguf{,.inp,.out}) in a llama.cpp source tree
// cloned from the git bundle that npm's node-llama-cpp ships (scripts/llama-cpp-source),
// and the reference tokenizers installed in tests/node_modules (scripts/setup).
// A missing oracle is a test failure with instructions, never a skip.

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/strings.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/vocab_loader.h"
#include "gtest/gtest.h"

namespace triplane::engine::testing {

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

// A tokenizer for the GGUF file at `path` (the file is read and closed).
inline absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::filesystem::path& path) {
  auto file = GgufFile::Open(path.string());
  if (!file.ok()) return file.status();
  auto vocab = LoadVocab(**file);
  if (!vocab.ok()) return vocab.status();
  return Tokenizer::Create(*std::move(vocab));
}

}  // namespace triplane::engine::testing
