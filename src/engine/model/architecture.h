#pragma once

// The table of supported architectures. Each architecture lives in its own file
// (llama.cc, qwen2.cc, qwen3.cc) and says which tensors a layer has; the loader binds
// them and the random-model generator creates them from the same description.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/model/model_config.h"

namespace triplane::engine {

// What a tensor is for, independent of its GGUF name.
enum class TensorRole {
  kAttnNorm, kWq, kWk, kWv, kWo, kBq, kBk, kBv, kQNorm, kKNorm,
  kFfnNorm, kWGate, kWUp, kWDown,
};

struct LayerTensorSpec {
  TensorRole role;
  std::string name;            // "blk.3.attn_q.weight"
  std::vector<int64_t> dims;   // GGUF order: dims[0] is the row length (innermost)
  bool is_matrix = false;      // weight matrix (quantizable) vs. norm/bias vector (f32)
};

struct ArchitectureSpec {
  std::string_view name;  // general.architecture
  RopeStyle rope_style;
  // The tensors of layer `layer`. Norm weights initialise to ~1, biases to ~0.
  std::vector<LayerTensorSpec> (*layer_tensors)(const ModelConfig& config, int64_t layer);
};

// The spec for `name`, or null when unsupported.
const ArchitectureSpec* FindArchitecture(std::string_view name);
// Every supported architecture, for help texts and tests.
std::span<const ArchitectureSpec* const> Architectures();

// Building blocks shared by the llama family.
std::vector<LayerTensorSpec> LlamaFamilyLayer(const ModelConfig& config, int64_t layer,
                                              bool qkv_bias, bool qk_norm);

}  // namespace triplane::engine
