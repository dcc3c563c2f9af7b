#pragma once

// Read-only, zero-copy view of a GGUF model file (llama.cpp's format, versions 2 and 3).
//
// Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count,
// metadata (key string, u32 type, value; arrays: u32 element type, u64 count, elements),
// tensor infos (name string, u32 n_dims, n_dims x i64 dims, u32 ggml type, u64 offset),
// padding to `general.alignment` (default 32), then the data section. Strings are a u64
// byte length and that many bytes (no NUL, not necessarily UTF-8).
//
// Files come from the internet: Open/FromBuffer validate everything before returning,
// with overflow-safe arithmetic and no allocation larger than the input justifies.
// What is accepted follows llama.cpp's reader (ggml/src/gguf.cpp):
//   * versions 2 and 3 (version 1 and big-endian files get a clear error);
//   * keys non-empty and unique; `general.alignment`, when present, a u32 power of two;
//   * arrays of any scalar type or of strings; arrays of arrays are rejected (llama.cpp
//     rejects them too);
//   * tensor names non-empty, shorter than 64 bytes (ggml's GGML_MAX_NAME) and unique;
//     0 to 4 dims, each >= 0 (a zero dim gives an empty tensor); the element count and
//     byte size must not overflow; ne[0] a multiple of the type's block size; the type
//     id known to GetGgmlTypeTraits;
//   * data offsets multiples of the alignment, inside the file, not overlapping. Unlike
//     llama.cpp we do not require tensors to be packed in order.
// Errors are InvalidArgument (a bad value) or DataLoss (the file ends too early), with a
// message naming the item and its byte offset.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "engine/gguf/ggml_type.h"
#include "engine/gguf/gguf_value.h"

namespace triplane::engine {

inline constexpr uint64_t kGgufDefaultAlignment = 32;
// ggml's GGML_MAX_NAME (64) counts the terminating NUL.
inline constexpr size_t kGgufMaxTensorNameBytes = 63;
inline constexpr size_t kGgufMaxDims = 4;

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // ne[0] (innermost, contiguous) first, as in the file; 0-4 dims
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t bytes = 0;   // size of the data
  int64_t elements = 0;
};

class GgufFile {
 public:
  // One metadata entry. Views point into the file's bytes: valid while the GgufFile lives.
  struct KeyValue {
    std::string_view key;
    GgufValueType type = GgufValueType::kUint8;        // kArray for arrays
    GgufValueType array_type = GgufValueType::kUint8;  // element type; == type for scalars
    uint64_t array_size = 0;                           // elements; 0 for scalars
    // The value's encoding as in the file, after its type (and, for arrays, after the
    // element type and count): what GgufWriter::CopyValue writes back verbatim.
    std::span<const std::byte> encoded;

    // The scalar value. REQUIRES: type != kArray.
    GgufScalar Scalar() const;
    // Calls `fn(index, element)` for each array element in order until it returns false.
    // REQUIRES: type == kArray. Cost: O(array_size), no allocation.
    void ForEachElement(absl::FunctionRef<bool(uint64_t, const GgufScalar&)> fn) const;
  };

  // Maps the file at `path` read-only (MAP_PRIVATE) and validates it; advises huge pages
  // for the data section where the kernel allows it. Cost: one pass over the metadata and
  // tensor infos; tensor data is not touched.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);

  // Validates `bytes` as a GGUF file without copying it. The caller keeps `bytes` alive
  // and unchanged for the lifetime of the returned object.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GgufFile>> FromBuffer(
      std::span<const std::byte> bytes);

  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile();

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  // Byte offset of the data section in the file, and the file's size.
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return bytes_.size(); }

  // Typed metadata: nullopt when the key is absent or holds another type. GetInt accepts
  // integers of any width that fit in int64_t; GetFloat accepts f32 and f64.
  std::optional<std::string_view> GetString(std::string_view key) const;
  std::optional<int64_t> GetInt(std::string_view key) const;
  std::optional<double> GetFloat(std::string_view key) const;
  std::optional<bool> GetBool(std::string_view key) const;

  // Arrays: NotFound when absent, InvalidArgument when not an array of the right element
  // type. String views point into the file. GetFloatArray accepts f32 and f64 elements;
  // GetInt32Array accepts i8/u8/i16/u16/i32 and u32 elements that fit in int32_t.
  [[nodiscard]] absl::StatusOr<std::vector<std::string_view>> GetStringArray(
      std::string_view key) const;
  [[nodiscard]] absl::StatusOr<std::vector<float>> GetFloatArray(std::string_view key) const;
  [[nodiscard]] absl::StatusOr<std::vector<int32_t>> GetInt32Array(std::string_view key) const;

  // Every metadata entry in file order; FindKey looks one up by key (null when absent).
  const std::vector<KeyValue>& metadata() const { return metadata_; }
  const KeyValue* FindKey(std::string_view key) const;

  // Every tensor in file order; FindTensor looks one up by name (null when absent).
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(std::string_view name) const;

  // The tensor's bytes in the file (zero copy). REQUIRES: `tensor` comes from tensors().
  std::span<const std::byte> TensorData(const GgufTensorInfo& tensor) const;

 private:
  class Parser;
  GgufFile() = default;

  std::span<const std::byte> bytes_;
  void* mapping_ = nullptr;  // owned mmap of bytes_ when opened from a path
  uint32_t version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> metadata_;
  std::unordered_map<std::string_view, size_t> key_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;  // views into bytes_
};

}  // namespace triplane::engine
