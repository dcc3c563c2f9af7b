#pragma once

// Hyperparameters of a decoder-only transformer, read from GGUF metadata
// (`<arch>.embedding_length`, `<arch>.attention.head_count`, ...).

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_file.h"

namespace triplane::engine {

// How RoPE pairs dimensions: kNormal rotates (x[2i], x[2i+1]) (llama's GGUF layout);
// kNeox rotates (x[i], x[i + n_rot/2]) (Qwen 2 and 3).
enum class RopeStyle { kNormal, kNeox };

struct ModelConfig {
  std::string architecture;  // "llama", "qwen2", "qwen3"
  std::string name;          // general.name, may be empty
  int64_t vocab_size = 0;
  int64_t context_length = 0;  // trained context
  int64_t embedding = 0;       // d_model
  int64_t layers = 0;
  int64_t ffn = 0;             // feed-forward hidden size
  int64_t heads = 0;
  int64_t kv_heads = 0;        // grouped-query attention: heads % kv_heads == 0
  int64_t head_dim = 0;        // key/value length per head
  int64_t rope_dims = 0;       // rotated dimensions per head (<= head_dim, even)
  double rope_freq_base = 10000.0;
  double rope_freq_scale = 1.0;  // linear scaling: positions multiplied by this
  double rms_eps = 1e-5;
  RopeStyle rope_style = RopeStyle::kNormal;

  int64_t q_dim() const { return heads * head_dim; }
  int64_t kv_dim() const { return kv_heads * head_dim; }
};

// Reads and checks the hyperparameters. `rope_style` comes from the architecture table;
// the vocabulary size from tokenizer.ggml.tokens (or the embedding tensor when the
// tokenizer is absent). InvalidArgument names the missing or inconsistent key.
[[nodiscard]] absl::StatusOr<ModelConfig> ReadModelConfig(const GgufFile& file);

}  // namespace triplane::engine
