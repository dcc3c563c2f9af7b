#include "engine/model/random_model.h"

#include <cmath>
#include <map>
#include <vector>

#include "common/status_macros.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/kernels/cpu/quant.h"
#include "engine/model/architecture.h"
#include "engine/tokenizer/byte_level.h"
#include "fmt/format.h"

namespace triplane::engine {

namespace {

struct Shape {
  int64_t embedding, layers, heads, kv_heads, ffn, context;
};

// Every width is a multiple of 256 so that every type, K-quants included, can hold it.
const std::map<std::string, Shape, std::less<>>& Shapes() {
  static const std::map<std::string, Shape, std::less<>> kShapes = {
      {"tiny", {256, 2, 4, 2, 512, 1024}},
      {"15m", {256, 6, 8, 4, 768, 2048}},
      {"110m", {768, 12, 12, 12, 2048, 4096}},   // llama2.c's 110M shape
      {"1b", {2048, 16, 32, 8, 8192, 8192}},     // Llama 3.2 1B's shape
  };
  return kShapes;
}

// SplitMix64: a tiny, well-mixed generator; one stream per tensor.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Uniform() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }
  float Normal(float stddev) {  // Box-Muller
    const double r = std::sqrt(-2.0 * std::log(Uniform()));
    return static_cast<float>(stddev * r * std::cos(2.0 * M_PI * Uniform()));
  }

 private:
  uint64_t state_;
};

uint64_t TensorSeed(uint64_t seed, std::string_view name) {
  uint64_t h = 1469598103934665603ull ^ seed;  // FNV-1a over the name, keyed by the seed
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

// GGUF `general.file_type` (llama.cpp's LLAMA_FTYPE) for the weight type.
uint32_t FileType(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: return 0;
    case GgmlType::kF16: return 1;
    case GgmlType::kQ4_0: return 2;
    case GgmlType::kQ8_0: return 7;
    case GgmlType::kQ4_K: return 15;  // Q4_K_M
    case GgmlType::kQ6_K: return 18;
    case GgmlType::kBF16: return 32;
    default: return 0;
  }
}

// The built-in vocabulary: byte-level BPE with one token per byte and no merges (any
// text, in any language, round-trips) plus ChatML's special tokens and template.
constexpr std::string_view kBuiltinSpecials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
constexpr std::string_view kChatMlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

int64_t SetBuiltinVocab(GgufWriter& w) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(ByteLevelEncode(std::string(1, static_cast<char>(b))));
    types.push_back(1);  // normal
  }
  for (std::string_view special : kBuiltinSpecials) {
    tokens.emplace_back(special);
    types.push_back(3);  // control
  }
  const std::vector<std::string> merges;
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetString("tokenizer.ggml.pre", "default");
  w.SetStringArray("tokenizer.ggml.tokens", std::span<const std::string>(tokens));
  w.SetArray("tokenizer.ggml.token_type", types);
  w.SetStringArray("tokenizer.ggml.merges", std::span<const std::string>(merges));
  w.SetUint32("tokenizer.ggml.bos_token_id", 256);  // <|endoftext|>
  w.SetUint32("tokenizer.ggml.eos_token_id", 258);  // <|im_end|>
  w.SetBool("tokenizer.ggml.add_bos_token", false);
  w.SetString("tokenizer.chat_template", kChatMlTemplate);
  return static_cast<int64_t>(tokens.size());
}

}  // namespace

std::string RandomModelSizes() {
  std::string out;
  for (const auto& [name, shape] : Shapes()) out += fmt::format("{}{}", out.empty() ? "" : ", ", name);
  return out;
}

absl::Status WriteRandomModel(const RandomModelOptions& o, const std::string& out) {
  const ArchitectureSpec* spec = FindArchitecture(o.architecture);
  if (!spec) return absl::InvalidArgumentError(fmt::format("unknown architecture '{}'", o.architecture));
  auto shape_it = Shapes().find(o.size);
  if (shape_it == Shapes().end()) {
    return absl::InvalidArgumentError(fmt::format("unknown size '{}' (sizes: {})", o.size, RandomModelSizes()));
  }
  if (!cpu::IsCpuWeightType(o.type)) return absl::InvalidArgumentError("unsupported weight type");
  GgufWriter w;
  int64_t vocab_size = 0;
  if (o.vocab_from.empty()) {
    vocab_size = SetBuiltinVocab(w);
  } else {
    TP_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> vocab, GgufFile::Open(o.vocab_from));
    auto tokens = vocab->GetStringArray("tokenizer.ggml.tokens");
    if (!tokens.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{} has no tokenizer (tokenizer.ggml.tokens)", o.vocab_from));
    }
    vocab_size = static_cast<int64_t>(tokens->size());
    for (const GgufFile::KeyValue& kv : vocab->metadata()) {
      if (std::string_view(kv.key).starts_with("tokenizer.")) w.CopyValue(kv);
    }
  }

  const Shape& s = shape_it->second;
  ModelConfig c;
  c.architecture = o.architecture;
  c.vocab_size = vocab_size;
  c.embedding = s.embedding;
  c.layers = s.layers;
  c.heads = s.heads;
  c.kv_heads = s.kv_heads;
  c.ffn = s.ffn;
  c.context_length = s.context;
  c.head_dim = s.embedding / s.heads;
  c.rope_dims = c.head_dim;
  const bool qwen = o.architecture != "llama";
  const bool llama3_rope = !qwen && (o.llama3_rope_scaling || o.size == "1b");

  const std::string p = o.architecture + ".";
  w.SetString("general.architecture", o.architecture);
  w.SetString("general.name", fmt::format("triplane-random-{}-{}", o.architecture, o.size));
  w.SetUint32("general.file_type", FileType(o.type));
  w.SetUint32(p + "context_length", static_cast<uint32_t>(c.context_length));
  w.SetUint32(p + "embedding_length", static_cast<uint32_t>(c.embedding));
  w.SetUint32(p + "block_count", static_cast<uint32_t>(c.layers));
  w.SetUint32(p + "feed_forward_length", static_cast<uint32_t>(c.ffn));
  w.SetUint32(p + "attention.head_count", static_cast<uint32_t>(c.heads));
  w.SetUint32(p + "attention.head_count_kv", static_cast<uint32_t>(c.kv_heads));
  w.SetUint32(p + "rope.dimension_count", static_cast<uint32_t>(c.rope_dims));
  w.SetFloat32(p + "rope.freq_base", qwen ? 1000000.0f : (llama3_rope ? 500000.0f : 10000.0f));
  w.SetFloat32(p + "attention.layer_norm_rms_epsilon", qwen ? 1e-6f : 1e-5f);
  if (o.architecture == "qwen3") {
    w.SetUint32(p + "attention.key_length", static_cast<uint32_t>(c.head_dim));
    w.SetUint32(p + "attention.value_length", static_cast<uint32_t>(c.head_dim));
  }
  // Matrices stream row by row: a 1B model is never held in memory.
  auto add_matrix = [&](const std::string& name, int64_t cols, int64_t rows) -> absl::Status {
    const uint64_t seed = TensorSeed(o.seed, name);
    const GgmlType type = o.type;
    return w.AddTensorStream(name, {cols, rows}, type, [seed, cols, rows, type](GgufWriter::ChunkWriter write) {
      Rng rng(seed);
      std::vector<float> row(static_cast<size_t>(cols));
      std::vector<std::byte> packed(static_cast<size_t>(cpu::RowBytes(type, cols)));
      for (int64_t r = 0; r < rows; ++r) {
        for (float& x : row) x = rng.Normal(0.02f);
        TP_RETURN_IF_ERROR(cpu::QuantizeRow(type, row.data(), packed.data(), cols));
        TP_RETURN_IF_ERROR(write(packed));
      }
      return absl::OkStatus();
    });
  };
  auto add_vector = [&](const std::string& name, int64_t n, float mean, float stddev) -> absl::Status {
    Rng rng(TensorSeed(o.seed, name));
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = mean + rng.Normal(stddev);
    return w.AddTensor(name, {n}, GgmlType::kF32,
                       std::as_bytes(std::span<const float>(v.data(), v.size())));
  };

  TP_RETURN_IF_ERROR(add_matrix("token_embd.weight", c.embedding, c.vocab_size));
  for (int64_t layer = 0; layer < c.layers; ++layer) {
    for (const LayerTensorSpec& t : spec->layer_tensors(c, layer)) {
      if (t.is_matrix) {
        TP_RETURN_IF_ERROR(add_matrix(t.name, t.dims[0], t.dims[1]));
      } else {
        const bool norm = t.role == TensorRole::kAttnNorm || t.role == TensorRole::kFfnNorm ||
                          t.role == TensorRole::kQNorm || t.role == TensorRole::kKNorm;
        TP_RETURN_IF_ERROR(add_vector(t.name, t.dims[0], norm ? 1.0f : 0.0f, norm ? 0.1f : 0.02f));
      }
    }
  }
  TP_RETURN_IF_ERROR(add_vector("output_norm.weight", c.embedding, 1.0f, 0.1f));
  if (llama3_rope) {
    // Llama 3.1's recipe: keep high frequencies, divide low ones by `factor`, blend between.
    constexpr double kFactor = 8, kLowFreqFactor = 1, kHighFreqFactor = 4, kOriginalContext = 8192;
    const double low_wavelength = kOriginalContext / kLowFreqFactor;
    const double high_wavelength = kOriginalContext / kHighFreqFactor;
    std::vector<float> factors;
    for (int64_t i = 0; i < c.rope_dims / 2; ++i) {
      const double freq = std::pow(500000.0, -2.0 * static_cast<double>(i) / static_cast<double>(c.rope_dims));
      const double wavelength = 2 * M_PI / freq;
      double f = 1;
      if (wavelength > low_wavelength) {
        f = kFactor;
      } else if (wavelength > high_wavelength) {
        const double smooth = (kOriginalContext / wavelength - kLowFreqFactor) / (kHighFreqFactor - kLowFreqFactor);
        f = 1.0 / ((1 - smooth) / kFactor + smooth);
      }
      factors.push_back(static_cast<float>(f));
    }
    TP_RETURN_IF_ERROR(w.AddTensor("rope_freqs.weight", {c.rope_dims / 2}, GgmlType::kF32,
                                   std::as_bytes(std::span<const float>(factors.data(), factors.size()))));
  }
  if (!qwen) TP_RETURN_IF_ERROR(add_matrix("output.weight", c.embedding, c.vocab_size));  // qwen: tied
  return w.WriteTo(out);
}

}  // namespace triplane::engine
