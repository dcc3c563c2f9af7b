#pragma once

// Tensor element types as numbered in the GGUF format (ggml's type ids), with their
// block geometry. Values are part of the file format: never renumber.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace triplane::engine {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
};

// Elements per block and bytes per block; {1, sizeof(element)} for plain types.
struct GgmlTypeTraits {
  std::string_view name;  // "q4_K", as llama.cpp prints it
  int64_t block_elements = 0;
  int64_t block_bytes = 0;
};

// Traits of `type`, or nullopt for an id this build does not know (a hostile or newer
// file): callers must turn that into a clear error.
std::optional<GgmlTypeTraits> GetGgmlTypeTraits(uint32_t type);

// Bytes of a row of `elements` elements, or nullopt when `elements` is not a multiple
// of the block size, the type is unknown, or the size overflows.
std::optional<uint64_t> GgmlRowBytes(uint32_t type, uint64_t elements);

}  // namespace triplane::engine
