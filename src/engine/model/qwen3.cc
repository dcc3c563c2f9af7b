// Qwen 3 (dense): no QKV biases; instead an RMSNorm over each head of Q and K before
// RoPE (NeoX style). Head size may differ from embedding / heads.
#include "engine/model/architecture.h"

namespace triplane::engine {

const ArchitectureSpec& Qwen3Architecture() {
  static const ArchitectureSpec kSpec{
      .name = "qwen3",
      .rope_style = RopeStyle::kNeox,
      .layer_tensors = [](const ModelConfig& c, int64_t layer) {
        return LlamaFamilyLayer(c, layer, /*qkv_bias=*/false, /*qk_norm=*/true);
      },
  };
  return kSpec;
}

}  // namespace triplane::engine
