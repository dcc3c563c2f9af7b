#pragma once

// Random-weight models in real GGUF files with a real tokenizer: what tests, benchmarks
// and the demo model run on where real weights cannot be downloaded.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "engine/gguf/ggml_type.h"

namespace triplane::engine {

struct RandomModelOptions {
  std::string architecture = "llama";  // llama | qwen2 | qwen3
  std::string size = "tiny";           // tiny | 15m | 110m | 1b (shapes below)
  GgmlType type = GgmlType::kF32;      // weight matrices; norms stay f32
  // GGUF whose tokenizer.* metadata is copied; empty: a built-in byte-level vocabulary
  // (one token per byte, no merges, ChatML special tokens and chat template).
  std::string vocab_from;
  uint64_t seed = 0;
  // Llama 3.1-style RoPE scaling: a rope_freqs tensor of per-dimension factors (factor 8,
  // low/high frequency factors 1 and 4, original context 8192) and base 500000. Only for
  // the llama architecture; the 1b size always has it, as Llama 3.2 1B does.
  bool llama3_rope_scaling = false;
};

// Writes the model to `out` (atomically). The weights are a deterministic function of
// (architecture, size, type, seed, tensor name): the same options give the same file.
// Matrices are N(0, 0.02²)-distributed before quantization, norms ≈ 1, biases ≈ 0.
// InvalidArgument for unknown options or a vocabulary file without tokenizer metadata.
[[nodiscard]] absl::Status WriteRandomModel(const RandomModelOptions& options, const std::string& out);

// "tiny, 15m, 110m, 1b", for help texts.
std::string RandomModelSizes();

}  // namespace triplane::engine
