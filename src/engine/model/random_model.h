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
  std::string vocab_from;              // GGUF whose tokenizer.* metadata is copied
  uint64_t seed = 0;
};

// Writes the model to `out` (atomically). The weights are a deterministic function of
// (architecture, size, type, seed, tensor name): the same options give the same file.
// Matrices are N(0, 0.02²)-distributed before quantization, norms ≈ 1, biases ≈ 0.
// InvalidArgument for unknown options or a vocabulary file without tokenizer metadata.
[[nodiscard]] absl::Status WriteRandomModel(const RandomModelOptions& options, const std::string& out);

// "tiny, 15m, 110m, 1b", for help texts.
std::string RandomModelSizes();

}  // namespace triplane::engine
