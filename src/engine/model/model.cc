#include "engine/model/model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/status_macros.h"
#include "engine/kernels/cpu/interleaved.h"
#include "engine/kernels/cpu/quant.h"
#include "engine/model/architecture.h"
#include "fmt/format.h"

namespace triplane::engine {

namespace {

std::string DimsText(const std::vector<int64_t>& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", dims[i]);
  return out + "]";
}

absl::StatusOr<const GgufTensorInfo*> Find(const GgufFile& file, const std::string& name,
                                           const std::vector<int64_t>& dims) {
  const GgufTensorInfo* t = file.FindTensor(name);
  if (!t) return absl::InvalidArgumentError(fmt::format("model: tensor '{}' is missing", name));
  if (t->dims != dims) {
    return absl::InvalidArgumentError(fmt::format("model: tensor '{}' has shape {}, expected {}",
                                                  name, DimsText(t->dims), DimsText(dims)));
  }
  return t;
}

absl::StatusOr<WeightMatrix> BindMatrix(const GgufFile& file, const std::string& name,
                                        int64_t cols, int64_t rows) {
  TP_ASSIGN_OR_RETURN(const GgufTensorInfo* t, Find(file, name, {cols, rows}));
  if (!cpu::IsCpuWeightType(t->type)) {
    auto traits = GetGgmlTypeTraits(static_cast<uint32_t>(t->type));
    return absl::InvalidArgumentError(fmt::format(
        "model: tensor '{}' has type {}, which the CPU kernels do not support "
        "(supported: f32, f16, bf16, q8_0, q4_0, q4_K, q6_K)",
        name, traits ? traits->name : "unknown"));
  }
  WeightMatrix m;
  m.type = t->type;
  m.data = file.TensorData(*t).data();
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = cpu::RowBytes(t->type, cols);
  return m;
}

absl::StatusOr<std::vector<float>> BindVector(const GgufFile& file, const std::string& name,
                                              int64_t n) {
  TP_ASSIGN_OR_RETURN(const GgufTensorInfo* t, Find(file, name, {n}));
  if (!cpu::IsCpuTensorType(t->type)) {
    return absl::InvalidArgumentError(fmt::format("model: tensor '{}' has an unsupported type", name));
  }
  std::vector<float> out(static_cast<size_t>(n));
  TP_RETURN_IF_ERROR(cpu::DequantizeRow(t->type, file.TensorData(*t).data(), out.data(), n));
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& path, ModelLoadOptions options) {
  TP_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(path));
  return FromFile(std::move(file), options);
}

Model::~Model() = default;

bool Model::CopyWeightsToHugePages(bool interleave) {
  const auto& tensors = file_->tensors();
  if (tensors.empty()) return false;
  // The data section: from the lowest tensor offset to the end of the highest tensor.
  const std::byte* first = nullptr;
  const std::byte* last = nullptr;
  for (const GgufTensorInfo& t : tensors) {
    std::span<const std::byte> data = file_->TensorData(t);
    if (data.empty()) continue;
    const std::byte* begin = data.data();
    if (!first || begin < first) first = begin;
    if (!last || begin + data.size() > last) last = begin + data.size();
  }
  if (!first) return false;
  HugePageBuffer buffer(static_cast<size_t>(last - first));
  if (buffer.empty()) return false;
  std::byte* copy = buffer.data();
  // The matrices, each once (a tied output shares token_embd's data), in file order.
  ModelWeights& w = weights_;
  std::vector<WeightMatrix*> matrices = {&w.token_embd, &w.output};
  for (LayerWeights& l : w.layers) {
    for (WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) matrices.push_back(m);
  }
  std::vector<WeightMatrix*> unique = matrices;
  std::sort(unique.begin(), unique.end(), [](auto* a, auto* b) { return a->data < b->data; });
  unique.erase(std::unique(unique.begin(), unique.end(), [](auto* a, auto* b) { return a->data == b->data; }),
               unique.end());
  // Copy (or interleave) in chunks, dropping each chunk of file pages from this process
  // as soon as it is done, so that the peak stays near one copy of the weights.
  const long page = ::sysconf(_SC_PAGESIZE);
  auto release = [&](const std::byte* begin_ptr, size_t n) {
    auto begin = (reinterpret_cast<uintptr_t>(begin_ptr) + page - 1) & ~static_cast<uintptr_t>(page - 1);
    auto end = reinterpret_cast<uintptr_t>(begin_ptr + n) & ~static_cast<uintptr_t>(page - 1);
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  };
  constexpr size_t kChunk = 32u << 20;
  std::vector<const std::byte*> interleaved;
  for (WeightMatrix* m : unique) {
    if (!m->data) continue;
    const auto bytes_m = static_cast<size_t>(m->rows * m->row_bytes);
    std::byte* dst = copy + (m->data - first);
    // token_embd is only read row by row unless it is also the output matrix.
    const bool multiplied = m->data != w.token_embd.data || w.tied_output;
    if (interleave && multiplied && cpu::InterleavedKernelsFast() &&
        cpu::CanInterleave(m->type, m->rows, m->cols)) {
      const int64_t group_bytes = cpu::kInterleaveRows * m->row_bytes;
      const int64_t groups = m->rows / cpu::kInterleaveRows;
      const int64_t per_chunk = std::max<int64_t>(1, static_cast<int64_t>(kChunk) / group_bytes);
      for (int64_t g = 0; g < groups; g += per_chunk) {
        const int64_t g_end = std::min(groups, g + per_chunk);
        cpu::InterleaveRows(m->type, m->data, m->rows, m->cols, dst, g, g_end);
        release(m->data + g * group_bytes, static_cast<size_t>((g_end - g) * group_bytes));
      }
      interleaved.push_back(m->data);
      continue;
    }
    for (size_t done = 0; done < bytes_m; done += kChunk) {
      const size_t n = std::min(kChunk, bytes_m - done);
      std::memcpy(dst + done, m->data + done, n);
      release(m->data + done, n);
    }
  }
  for (WeightMatrix* m : matrices) {
    if (!m->data) continue;
    m->interleaved = std::find(interleaved.begin(), interleaved.end(), m->data) != interleaved.end();
    m->data = copy + (m->data - first);
  }
  weight_copy_ = std::move(buffer);
  return true;
}

absl::StatusOr<std::unique_ptr<Model>> Model::FromFile(std::unique_ptr<GgufFile> file,
                                                       ModelLoadOptions options) {
  std::unique_ptr<Model> model(new Model());
  model->file_ = std::move(file);
  const GgufFile& f = *model->file_;
  TP_ASSIGN_OR_RETURN(model->config_, ReadModelConfig(f));
  const ModelConfig& c = model->config_;
  ModelWeights& w = model->weights_;
  const ArchitectureSpec* spec = FindArchitecture(c.architecture);

  TP_ASSIGN_OR_RETURN(w.token_embd, BindMatrix(f, "token_embd.weight", c.embedding, c.vocab_size));
  TP_ASSIGN_OR_RETURN(w.output_norm, BindVector(f, "output_norm.weight", c.embedding));
  if (f.FindTensor("output.weight")) {
    TP_ASSIGN_OR_RETURN(w.output, BindMatrix(f, "output.weight", c.embedding, c.vocab_size));
  } else {
    w.output = w.token_embd;
    w.tied_output = true;
  }
  if (f.FindTensor("rope_freqs.weight")) {
    TP_ASSIGN_OR_RETURN(w.rope_freq_factors, BindVector(f, "rope_freqs.weight", c.rope_dims / 2));
  }
  w.layers.resize(static_cast<size_t>(c.layers));
  for (int64_t layer = 0; layer < c.layers; ++layer) {
    LayerWeights& l = w.layers[static_cast<size_t>(layer)];
    for (const LayerTensorSpec& t : spec->layer_tensors(c, layer)) {
      if (t.is_matrix) {
        TP_ASSIGN_OR_RETURN(WeightMatrix m, BindMatrix(f, t.name, t.dims[0], t.dims[1]));
        switch (t.role) {
          case TensorRole::kWq: l.wq = m; break;
          case TensorRole::kWk: l.wk = m; break;
          case TensorRole::kWv: l.wv = m; break;
          case TensorRole::kWo: l.wo = m; break;
          case TensorRole::kWGate: l.w_gate = m; break;
          case TensorRole::kWUp: l.w_up = m; break;
          case TensorRole::kWDown: l.w_down = m; break;
          default: return absl::InternalError("model: matrix spec with a vector role");
        }
        continue;
      }
      TP_ASSIGN_OR_RETURN(std::vector<float> v, BindVector(f, t.name, t.dims[0]));
      switch (t.role) {
        case TensorRole::kAttnNorm: l.attn_norm = std::move(v); break;
        case TensorRole::kFfnNorm: l.ffn_norm = std::move(v); break;
        case TensorRole::kBq: l.bq = std::move(v); break;
        case TensorRole::kBk: l.bk = std::move(v); break;
        case TensorRole::kBv: l.bv = std::move(v); break;
        case TensorRole::kQNorm: l.q_norm = std::move(v); break;
        case TensorRole::kKNorm: l.k_norm = std::move(v); break;
        default: return absl::InternalError("model: vector spec with a matrix role");
      }
    }
  }
  if (options.huge_pages) model->CopyWeightsToHugePages(options.interleave);
  return model;
}

uint64_t Model::weight_bytes() const {
  uint64_t total = 0;
  for (const GgufTensorInfo& t : file_->tensors()) total += t.bytes;
  return total;
}

}  // namespace triplane::engine
