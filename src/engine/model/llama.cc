// Llama (1, 2, 3) and Mistral: RMSNorm, GQA attention with RoPE over adjacent pairs
// (GGUF stores Q/K permuted for it), SwiGLU feed-forward, optional tied output.
#include "engine/model/architecture.h"

namespace triplane::engine {

const ArchitectureSpec& LlamaArchitecture() {
  static const ArchitectureSpec kSpec{
      .name = "llama",
      .rope_style = RopeStyle::kNormal,
      .layer_tensors = [](const ModelConfig& c, int64_t layer) {
        return LlamaFamilyLayer(c, layer, /*qkv_bias=*/false, /*qk_norm=*/false);
      },
  };
  return kSpec;
}

}  // namespace triplane::engine
