#pragma once

// Locates the tokenizer oracles these tests compare against: llama.cpp's vocabulary files
// and test vectors (models/ggml-vocab-*.gguf{,.inp,.out}) in a llama.cpp source tree
// cloned from the git bundle that npm's node-llama-cpp ships (scripts/llama-cpp-source),
// and the reference tokenizers installed in tests/node_modules (scripts/setup).
// A missing oracle is a test failure with instructions, never a skip.

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
#include "testing/llama_cpp_source.h"

namespace triplane::engine::testing {

using ::triplane::testing::LlamaCppSourceDir;
using ::triplane::testing::LlamaCppVocabPath;

// A tokenizer for the GGUF file at `path` (the file is read and closed).
inline absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::filesystem::path& path) {
  auto file = GgufFile::Open(path.string());
  if (!file.ok()) return file.status();
  auto vocab = LoadVocab(**file);
  if (!vocab.ok()) return vocab.status();
  return Tokenizer::Create(*std::move(vocab));
}

}  // namespace triplane::engine::testing
