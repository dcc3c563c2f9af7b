#pragma once

// Small model files for engine tests.

#include <filesystem>
#include <string>
#include <vector>

#include "engine/gguf/gguf_writer.h"
#include "gtest/gtest.h"

namespace triplane::testing {

// A vocabulary-only GGUF with `n` made-up tokens: enough for a random model.
inline std::string WriteVocab(const std::filesystem::path& dir, int n) {
  engine::GgufWriter w;
  std::vector<std::string> tokens;
  for (int i = 0; i < n; ++i) tokens.push_back("t" + std::to_string(i));
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetStringArray("tokenizer.ggml.tokens", std::span<const std::string>(tokens));
  w.SetUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(n - 1));
  std::string path = (dir / "vocab.gguf").string();
  EXPECT_TRUE(w.WriteTo(path).ok());
  return path;
}

}  // namespace triplane::testing
