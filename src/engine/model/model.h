#pragma once

// A loaded model: the mapped GGUF file, its hyperparameters and views of its weights.
// Immutable after Load(); share it between threads freely.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/gguf/ggml_type.h"
#include "engine/gguf/gguf_file.h"
#include "engine/model/huge_page_buffer.h"
#include "engine/model/model_config.h"

namespace triplane::engine {

// A weight matrix in the mapped file: [rows, cols] row-major blocks of `type` (GGUF
// dims {cols, rows}). Zero-copy view; valid while the Model lives.
struct WeightMatrix {
  GgmlType type = GgmlType::kF32;
  const std::byte* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_bytes = 0;
  // Stored in cpu::InterleaveRows' layout (16-row groups) instead of GGUF's: multiply
  // with cpu::MatMulInterleaved, read a row with cpu::DeinterleaveRow.
  bool interleaved = false;
};

struct LayerWeights {
  std::vector<float> attn_norm;  // [embedding]
  WeightMatrix wq, wk, wv, wo;   // [q_dim, emb], [kv_dim, emb] ×2, [emb, q_dim]
  std::vector<float> bq, bk, bv; // empty unless the architecture has QKV biases
  std::vector<float> q_norm, k_norm;  // [head_dim], empty unless the architecture has them
  std::vector<float> ffn_norm;   // [embedding]
  WeightMatrix w_gate, w_up, w_down;  // [ffn, emb] ×2, [emb, ffn]
};

struct ModelWeights {
  WeightMatrix token_embd;          // [vocab, embedding]
  std::vector<float> output_norm;   // [embedding]
  WeightMatrix output;              // [vocab, embedding]; token_embd when tied
  bool tied_output = false;
  std::vector<float> rope_freq_factors;  // [rope_dims / 2] (Llama 3 scaling), or empty
  std::vector<LayerWeights> layers;
};

struct ModelLoadOptions {
  // Copy the weights into anonymous memory advised for transparent huge pages (and
  // release the file pages): decode streams every weight once per token, and 2 MiB
  // pages read 12-20 % faster here than the page cache's 4 KiB pages. Off: weights are
  // used in place from the file mapping (zero copy).
  bool huge_pages = true;
  // With huge_pages, store Q8_0, Q4_0 and Q4_K matrices interleaved (cpu/interleaved.h)
  // where this CPU has the kernels for it (AVX-512 VNNI): same bytes, 16 rows per
  // vector instruction. Only the float summation order differs from GGUF's layout.
  bool interleave = true;
};

class Model {
 public:
  // Maps `path` and binds every tensor the architecture needs, checking names, shapes
  // and types. Norm and bias vectors are converted to f32 (small).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& path,
                                                                   ModelLoadOptions options = {});
  // The same from an already opened file (tests); takes ownership.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Model>> FromFile(std::unique_ptr<GgufFile> file,
                                                                       ModelLoadOptions options = {});
  ~Model();

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const GgufFile& file() const { return *file_; }

  // Bytes of weight data mapped (the model's share of memory).
  uint64_t weight_bytes() const;

 private:
  Model() = default;
  // Moves the matrices into huge-page-advised anonymous memory, interleaving those that
  // can be when `interleave`; false if that memory is unavailable.
  bool CopyWeightsToHugePages(bool interleave);

  std::unique_ptr<GgufFile> file_;
  HugePageBuffer weight_copy_;  // holds the matrices when they were copied, or empty
  ModelConfig config_;
  ModelWeights weights_;
};

}  // namespace triplane::engine
