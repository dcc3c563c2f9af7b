#include "engine/model/architecture.h"

#include "fmt/format.h"

namespace triplane::engine {

const ArchitectureSpec& LlamaArchitecture();
const ArchitectureSpec& Qwen2Architecture();
const ArchitectureSpec& Qwen3Architecture();

std::span<const ArchitectureSpec* const> Architectures() {
  // Functions, not static registration objects: a registration object in a static
  // library is dropped by the linker when nothing references its file.
  static const ArchitectureSpec* const kTable[] = {
      &LlamaArchitecture(),
      &Qwen2Architecture(),
      &Qwen3Architecture(),
  };
  return kTable;
}

const ArchitectureSpec* FindArchitecture(std::string_view name) {
  for (const ArchitectureSpec* spec : Architectures()) {
    if (spec->name == name) return spec;
  }
  return nullptr;
}

std::vector<LayerTensorSpec> LlamaFamilyLayer(const ModelConfig& c, int64_t layer, bool qkv_bias,
                                              bool qk_norm) {
  auto name = [layer](std::string_view what) { return fmt::format("blk.{}.{}", layer, what); };
  std::vector<LayerTensorSpec> t = {
      {TensorRole::kAttnNorm, name("attn_norm.weight"), {c.embedding}, false},
      {TensorRole::kWq, name("attn_q.weight"), {c.embedding, c.q_dim()}, true},
      {TensorRole::kWk, name("attn_k.weight"), {c.embedding, c.kv_dim()}, true},
      {TensorRole::kWv, name("attn_v.weight"), {c.embedding, c.kv_dim()}, true},
      {TensorRole::kWo, name("attn_output.weight"), {c.q_dim(), c.embedding}, true},
      {TensorRole::kFfnNorm, name("ffn_norm.weight"), {c.embedding}, false},
      {TensorRole::kWGate, name("ffn_gate.weight"), {c.embedding, c.ffn}, true},
      {TensorRole::kWUp, name("ffn_up.weight"), {c.embedding, c.ffn}, true},
      {TensorRole::kWDown, name("ffn_down.weight"), {c.ffn, c.embedding}, true},
  };
  if (qkv_bias) {
    t.push_back({TensorRole::kBq, name("attn_q.bias"), {c.q_dim()}, false});
    t.push_back({TensorRole::kBk, name("attn_k.bias"), {c.kv_dim()}, false});
    t.push_back({TensorRole::kBv, name("attn_v.bias"), {c.kv_dim()}, false});
  }
  if (qk_norm) {
    t.push_back({TensorRole::kQNorm, name("attn_q_norm.weight"), {c.head_dim}, false});
    t.push_back({TensorRole::kKNorm, name("attn_k_norm.weight"), {c.head_dim}, false});
  }
  return t;
}

}  // namespace triplane::engine
