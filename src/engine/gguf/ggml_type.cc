#include "engine/gguf/ggml_type.h"

#include <limits>

namespace triplane::engine {

std::optional<GgmlTypeTraits> GetGgmlTypeTraits(uint32_t type) {
  // Block layouts: see the block structs in engine/kernels/cpu (Q8_0: f16 scale + 32 int8;
  // Q4_0: f16 scale + 16 bytes of nibbles; Q4_K: 2 f16 + 12 scale bytes + 128 nibble
  // bytes per 256; Q6_K: 128 low + 64 high bytes + 16 int8 scales + f16 per 256; ...).
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32: return GgmlTypeTraits{"f32", 1, 4};
    case GgmlType::kF16: return GgmlTypeTraits{"f16", 1, 2};
    case GgmlType::kQ4_0: return GgmlTypeTraits{"q4_0", 32, 18};
    case GgmlType::kQ4_1: return GgmlTypeTraits{"q4_1", 32, 20};
    case GgmlType::kQ5_0: return GgmlTypeTraits{"q5_0", 32, 22};
    case GgmlType::kQ5_1: return GgmlTypeTraits{"q5_1", 32, 24};
    case GgmlType::kQ8_0: return GgmlTypeTraits{"q8_0", 32, 34};
    case GgmlType::kQ8_1: return GgmlTypeTraits{"q8_1", 32, 36};
    case GgmlType::kQ2_K: return GgmlTypeTraits{"q2_K", 256, 84};
    case GgmlType::kQ3_K: return GgmlTypeTraits{"q3_K", 256, 110};
    case GgmlType::kQ4_K: return GgmlTypeTraits{"q4_K", 256, 144};
    case GgmlType::kQ5_K: return GgmlTypeTraits{"q5_K", 256, 176};
    case GgmlType::kQ6_K: return GgmlTypeTraits{"q6_K", 256, 210};
    case GgmlType::kQ8_K: return GgmlTypeTraits{"q8_K", 256, 292};
    case GgmlType::kI8: return GgmlTypeTraits{"i8", 1, 1};
    case GgmlType::kI16: return GgmlTypeTraits{"i16", 1, 2};
    case GgmlType::kI32: return GgmlTypeTraits{"i32", 1, 4};
    case GgmlType::kI64: return GgmlTypeTraits{"i64", 1, 8};
    case GgmlType::kF64: return GgmlTypeTraits{"f64", 1, 8};
    case GgmlType::kBF16: return GgmlTypeTraits{"bf16", 1, 2};
  }
  return std::nullopt;
}

std::optional<uint64_t> GgmlRowBytes(uint32_t type, uint64_t elements) {
  auto traits = GetGgmlTypeTraits(type);
  if (!traits) return std::nullopt;
  uint64_t block = static_cast<uint64_t>(traits->block_elements);
  if (elements % block != 0) return std::nullopt;
  uint64_t blocks = elements / block;
  uint64_t bytes_per_block = static_cast<uint64_t>(traits->block_bytes);
  if (blocks > std::numeric_limits<uint64_t>::max() / bytes_per_block) return std::nullopt;
  return blocks * bytes_per_block;
}

}  // namespace triplane::engine
