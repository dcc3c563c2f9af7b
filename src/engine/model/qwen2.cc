// Qwen 2 / 2.5: the llama block with biases on the Q, K and V projections and NeoX-style
// RoPE (rotating the two halves of each head).
#include "engine/model/architecture.h"

namespace triplane::engine {

const ArchitectureSpec& Qwen2Architecture() {
  static const ArchitectureSpec kSpec{
      .name = "qwen2",
      .rope_style = RopeStyle::kNeox,
      .layer_tensors = [](const ModelConfig& c, int64_t layer) {
        return LlamaFamilyLayer(c, layer, /*qkv_bias=*/true, /*qk_norm=*/false);
      },
  };
  return kSpec;
}

}  // namespace triplane::engine
