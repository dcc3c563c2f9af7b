#include "engine/model/model_config.h"

#include "engine/model/architecture.h"
#include "fmt/format.h"

namespace triplane::engine {

namespace {

absl::StatusOr<int64_t> RequireInt(const GgufFile& file, const std::string& key, int64_t min,
                                   int64_t max) {
  std::optional<int64_t> value = file.GetInt(key);
  if (!value) return absl::InvalidArgumentError(fmt::format("model: missing integer metadata '{}'", key));
  if (*value < min || *value > max) {
    return absl::InvalidArgumentError(
        fmt::format("model: metadata '{}' = {} is out of range [{}, {}]", key, *value, min, max));
  }
  return *value;
}

}  // namespace

absl::StatusOr<ModelConfig> ReadModelConfig(const GgufFile& file) {
  ModelConfig c;
  std::optional<std::string_view> arch = file.GetString("general.architecture");
  if (!arch) return absl::InvalidArgumentError("model: missing 'general.architecture'");
  const ArchitectureSpec* spec = FindArchitecture(*arch);
  if (!spec) {
    std::string known;
    for (const ArchitectureSpec* s : Architectures()) known += fmt::format("{}{}", known.empty() ? "" : ", ", s->name);
    return absl::InvalidArgumentError(
        fmt::format("model: architecture '{}' is not supported (supported: {})", *arch, known));
  }
  c.architecture = std::string(*arch);
  c.name = std::string(file.GetString("general.name").value_or(""));
  c.rope_style = spec->rope_style;
  const std::string p = c.architecture + ".";
  constexpr int64_t kMaxDim = 1 << 20;
  auto get = [&](std::string_view key, int64_t min, int64_t max) {
    return RequireInt(file, p + std::string(key), min, max);
  };
  auto embedding = get("embedding_length", 1, kMaxDim);
  auto layers = get("block_count", 1, 4096);
  auto ffn = get("feed_forward_length", 1, kMaxDim);
  auto heads = get("attention.head_count", 1, 4096);
  auto context = get("context_length", 1, int64_t{1} << 24);
  for (const auto* v : {&embedding, &layers, &ffn, &heads, &context}) {
    if (!v->ok()) return v->status();
  }
  c.embedding = *embedding;
  c.layers = *layers;
  c.ffn = *ffn;
  c.heads = *heads;
  c.context_length = *context;
  c.kv_heads = file.GetInt(p + "attention.head_count_kv").value_or(c.heads);
  if (c.kv_heads < 1 || c.heads % c.kv_heads != 0) {
    return absl::InvalidArgumentError(fmt::format(
        "model: {} attention heads cannot be grouped over {} key/value heads", c.heads, c.kv_heads));
  }
  c.head_dim = file.GetInt(p + "attention.key_length").value_or(c.embedding / c.heads);
  int64_t value_length = file.GetInt(p + "attention.value_length").value_or(c.head_dim);
  if (c.head_dim < 2 || c.head_dim > 4096 || value_length != c.head_dim) {
    return absl::InvalidArgumentError(fmt::format(
        "model: head size {} (value length {}) is not supported", c.head_dim, value_length));
  }
  c.rope_dims = file.GetInt(p + "rope.dimension_count").value_or(c.head_dim);
  if (c.rope_dims < 0 || c.rope_dims > c.head_dim || c.rope_dims % 2 != 0) {
    return absl::InvalidArgumentError(
        fmt::format("model: rope.dimension_count {} does not fit head size {}", c.rope_dims, c.head_dim));
  }
  c.rope_freq_base = file.GetFloat(p + "rope.freq_base").value_or(10000.0);
  if (!(c.rope_freq_base > 0)) return absl::InvalidArgumentError("model: rope.freq_base must be > 0");
  if (auto scale = file.GetFloat(p + "rope.scale_linear")) {
    if (!(*scale > 0)) return absl::InvalidArgumentError("model: rope.scale_linear must be > 0");
    c.rope_freq_scale = 1.0 / *scale;
  }
  std::string_view scaling = file.GetString(p + "rope.scaling.type").value_or("none");
  if (scaling == "linear") {
    double factor = file.GetFloat(p + "rope.scaling.factor").value_or(1.0);
    if (!(factor > 0)) return absl::InvalidArgumentError("model: rope.scaling.factor must be > 0");
    c.rope_freq_scale = 1.0 / factor;
  } else if (scaling != "none" && scaling != "llama3") {
    // Llama 3 scaling arrives as per-dimension factors in the rope_freqs tensor.
    return absl::InvalidArgumentError(fmt::format("model: rope scaling '{}' is not supported", scaling));
  }
  c.rms_eps = file.GetFloat(p + "attention.layer_norm_rms_epsilon").value_or(1e-5);
  if (!(c.rms_eps > 0 && c.rms_eps < 1)) {
    return absl::InvalidArgumentError("model: attention.layer_norm_rms_epsilon must be in (0, 1)");
  }
  if (auto tokens = file.GetStringArray("tokenizer.ggml.tokens"); tokens.ok()) {
    c.vocab_size = static_cast<int64_t>(tokens->size());
  } else if (const GgufTensorInfo* embd = file.FindTensor("token_embd.weight");
             embd && embd->dims.size() == 2) {
    c.vocab_size = embd->dims[1];
  }
  if (c.vocab_size < 1) return absl::InvalidArgumentError("model: vocabulary size is unknown");
  return c;
}

}  // namespace triplane::engine
