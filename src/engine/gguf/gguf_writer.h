#pragma once

// Builds a GGUF file (version 3): metadata, tensor infos and aligned tensor data, in the
// layout GgufFile reads and llama.cpp writes (data section and every tensor padded to
// `general.alignment`, default 32).
//
//   GgufWriter writer;
//   writer.SetString("general.architecture", "llama");
//   writer.SetArray<int32_t>("tokenizer.ggml.token_type", types);
//   TP_RETURN_IF_ERROR(writer.AddTensor("output_norm.weight", {4096}, GgmlType::kF32, bytes));
//   TP_RETURN_IF_ERROR(writer.WriteTo(path));
//
// Thread-compatible. Memory: metadata and tensors added with AddTensor are copied;
// AddTensorView borrows and AddTensorStream produces bytes only while writing.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/gguf/ggml_type.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_value.h"

namespace triplane::engine {

class GgufWriter {
 public:
  // Writes a tensor's bytes in order, as chunks of any size, by calling `write`.
  using ChunkWriter = absl::FunctionRef<absl::Status(std::span<const std::byte>)>;
  using TensorProducer = std::function<absl::Status(ChunkWriter write)>;

  GgufWriter() = default;
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Metadata setters. Setting a key again replaces its value and keeps its position.
  // Keys must be non-empty (checked by WriteTo). `general.alignment` set as a u32 power of
  // two changes the file's alignment.
  void SetUint8(std::string_view key, uint8_t value);
  void SetInt8(std::string_view key, int8_t value);
  void SetUint16(std::string_view key, uint16_t value);
  void SetInt16(std::string_view key, int16_t value);
  void SetUint32(std::string_view key, uint32_t value);
  void SetInt32(std::string_view key, int32_t value);
  void SetUint64(std::string_view key, uint64_t value);
  void SetInt64(std::string_view key, int64_t value);
  void SetFloat32(std::string_view key, float value);
  void SetFloat64(std::string_view key, double value);
  void SetBool(std::string_view key, bool value);
  void SetString(std::string_view key, std::string_view value);

  // Arrays of numbers: T is one of uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t,
  // uint64_t, int64_t, float, double, bool.
  template <typename T>
  void SetArray(std::string_view key, std::span<const T> values);
  template <typename T>
  void SetArray(std::string_view key, const std::vector<T>& values) {
    static_assert(!std::is_same_v<T, bool>, "pass a std::span<const bool> for bool arrays");
    SetArray(key, std::span<const T>(values));
  }
  void SetStringArray(std::string_view key, std::span<const std::string_view> values);
  void SetStringArray(std::string_view key, std::span<const std::string> values);

  // Copies one entry of another file verbatim (key, type and value).
  void CopyValue(const GgufFile::KeyValue& kv);

  // True when `key` has been set; RemoveKey forgets it (no-op when absent).
  bool HasKey(std::string_view key) const;
  void RemoveKey(std::string_view key);

  // Adds a tensor, in file order. `dims` is ne[0] (innermost) first, 0-4 entries, each
  // >= 0. InvalidArgument for an empty, too long (> 63 bytes) or duplicate name, bad
  // dims, ne[0] not a multiple of the type's block size, or data of the wrong size.
  // AddTensor copies `data`.
  [[nodiscard]] absl::Status AddTensor(std::string_view name, std::vector<int64_t> dims,
                                       GgmlType type, std::span<const std::byte> data);
  // Borrows `data`: the caller keeps it alive and unchanged until the last WriteTo.
  [[nodiscard]] absl::Status AddTensorView(std::string_view name, std::vector<int64_t> dims,
                                           GgmlType type, std::span<const std::byte> data);
  // Calls `producer` during each WriteTo; it must write exactly the tensor's byte size
  // (GgmlRowBytes of the element count), or the write fails.
  [[nodiscard]] absl::Status AddTensorStream(std::string_view name, std::vector<int64_t> dims,
                                             GgmlType type, TensorProducer producer);

  // Writes the file to `path` atomically: a temporary file in the same directory,
  // fsync, then rename over `path`. On error `path` is untouched.
  [[nodiscard]] absl::Status WriteTo(const std::string& path) const;
  // The whole file in memory (tests, fuzzing seeds).
  [[nodiscard]] absl::StatusOr<std::vector<std::byte>> WriteToBuffer() const;

  // Alignment WriteTo will use (after validating `general.alignment`).
  [[nodiscard]] absl::StatusOr<uint64_t> Alignment() const;

 private:
  struct Entry {
    std::string key;
    GgufValueType type = GgufValueType::kUint8;
    GgufValueType array_type = GgufValueType::kUint8;
    uint64_t array_size = 0;
    std::vector<std::byte> encoded;  // as in GgufFile::KeyValue::encoded
  };
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;
    GgmlType type = GgmlType::kF32;
    uint64_t bytes = 0;
    std::vector<std::byte> owned;     // AddTensor
    std::span<const std::byte> view;  // AddTensor (into owned) and AddTensorView
    TensorProducer producer;          // AddTensorStream
  };
  class Sink;
  class BufferSink;
  class FileSink;

  void Set(std::string_view key, GgufValueType type, GgufValueType array_type, uint64_t array_size,
           std::vector<std::byte> encoded);
  template <typename T>
  void SetScalar(std::string_view key, GgufValueType type, T value);
  absl::StatusOr<Tensor> CheckTensor(std::string_view name, std::vector<int64_t> dims,
                                     GgmlType type) const;
  absl::Status Write(Sink& sink) const;

  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> entry_index_;
  std::vector<Tensor> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace triplane::engine
