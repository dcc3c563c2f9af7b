#include "engine/gguf/gguf_writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>

#include "common/status_macros.h"
#include "fmt/format.h"

namespace triplane::engine {

static_assert(std::endian::native == std::endian::little,
              "GGUF is written by copying fields as they are in memory");

namespace {

constexpr uint32_t kWriteVersion = 3;
constexpr std::string_view kWriterAlignmentKey = "general.alignment";

// resize + memcpy rather than insert: GCC 12 at -O3 reports a false
// -Wstringop-overflow for small range inserts into a growing vector.
void AppendBytes(std::vector<std::byte>& out, const void* data, size_t size) {
  if (size == 0) return;
  const size_t at = out.size();
  out.resize(at + size);
  std::memcpy(out.data() + at, data, size);
}

template <typename T>
void Append(std::vector<std::byte>& out, T value) {
  AppendBytes(out, &value, sizeof(T));
}

void AppendString(std::vector<std::byte>& out, std::string_view text) {
  Append<uint64_t>(out, text.size());
  AppendBytes(out, text.data(), text.size());
}

template <typename T>
constexpr GgufValueType TypeOf() {
  if constexpr (std::is_same_v<T, uint8_t>) return GgufValueType::kUint8;
  if constexpr (std::is_same_v<T, int8_t>) return GgufValueType::kInt8;
  if constexpr (std::is_same_v<T, uint16_t>) return GgufValueType::kUint16;
  if constexpr (std::is_same_v<T, int16_t>) return GgufValueType::kInt16;
  if constexpr (std::is_same_v<T, uint32_t>) return GgufValueType::kUint32;
  if constexpr (std::is_same_v<T, int32_t>) return GgufValueType::kInt32;
  if constexpr (std::is_same_v<T, uint64_t>) return GgufValueType::kUint64;
  if constexpr (std::is_same_v<T, int64_t>) return GgufValueType::kInt64;
  if constexpr (std::is_same_v<T, float>) return GgufValueType::kFloat32;
  if constexpr (std::is_same_v<T, double>) return GgufValueType::kFloat64;
  if constexpr (std::is_same_v<T, bool>) return GgufValueType::kBool;
}

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

}  // namespace

// Where Write puts the file's bytes.
class GgufWriter::Sink {
 public:
  virtual ~Sink() = default;
  virtual absl::Status Append(std::span<const std::byte> bytes) = 0;

  absl::Status Write(std::span<const std::byte> bytes) {
    written_ += bytes.size();
    return Append(bytes);
  }
  absl::Status PadTo(uint64_t alignment) {
    static constexpr std::byte kZeros[4096] = {};
    while (written_ % alignment != 0) {
      const uint64_t n =
          std::min<uint64_t>(AlignUp(written_, alignment) - written_, sizeof(kZeros));
      TP_RETURN_IF_ERROR(Write(std::span(kZeros, n)));
    }
    return absl::OkStatus();
  }
  uint64_t written() const { return written_; }

 private:
  uint64_t written_ = 0;
};

class GgufWriter::BufferSink final : public GgufWriter::Sink {
 public:
  absl::Status Append(std::span<const std::byte> bytes) override {
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    return absl::OkStatus();
  }
  std::vector<std::byte> Take() { return std::move(buffer_); }

 private:
  std::vector<std::byte> buffer_;
};

class GgufWriter::FileSink final : public GgufWriter::Sink {
 public:
  FileSink(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  absl::Status Append(std::span<const std::byte> bytes) override {
    if (bytes.empty()) return absl::OkStatus();
    if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
      return absl::InternalError(
          fmt::format("gguf: cannot write {}: {}", path_, std::strerror(errno)));
    }
    return absl::OkStatus();
  }

 private:
  std::FILE* file_;
  std::string path_;
};

// ---- Metadata ---------------------------------------------------------------------------

void GgufWriter::Set(std::string_view key, GgufValueType type, GgufValueType array_type,
                     uint64_t array_size, std::vector<std::byte> encoded) {
  Entry entry{.key = std::string(key),
              .type = type,
              .array_type = array_type,
              .array_size = array_size,
              .encoded = std::move(encoded)};
  const auto it = entry_index_.find(entry.key);
  if (it != entry_index_.end()) {
    entries_[it->second] = std::move(entry);
    return;
  }
  entry_index_.emplace(entry.key, entries_.size());
  entries_.push_back(std::move(entry));
}

template <typename T>
void GgufWriter::SetScalar(std::string_view key, GgufValueType type, T value) {
  std::vector<std::byte> encoded;
  Append<T>(encoded, value);
  Set(key, type, type, 0, std::move(encoded));
}

void GgufWriter::SetUint8(std::string_view key, uint8_t v) {
  SetScalar(key, GgufValueType::kUint8, v);
}
void GgufWriter::SetInt8(std::string_view key, int8_t v) {
  SetScalar(key, GgufValueType::kInt8, v);
}
void GgufWriter::SetUint16(std::string_view key, uint16_t v) {
  SetScalar(key, GgufValueType::kUint16, v);
}
void GgufWriter::SetInt16(std::string_view key, int16_t v) {
  SetScalar(key, GgufValueType::kInt16, v);
}
void GgufWriter::SetUint32(std::string_view key, uint32_t v) {
  SetScalar(key, GgufValueType::kUint32, v);
}
void GgufWriter::SetInt32(std::string_view key, int32_t v) {
  SetScalar(key, GgufValueType::kInt32, v);
}
void GgufWriter::SetUint64(std::string_view key, uint64_t v) {
  SetScalar(key, GgufValueType::kUint64, v);
}
void GgufWriter::SetInt64(std::string_view key, int64_t v) {
  SetScalar(key, GgufValueType::kInt64, v);
}
void GgufWriter::SetFloat32(std::string_view key, float v) {
  SetScalar(key, GgufValueType::kFloat32, v);
}
void GgufWriter::SetFloat64(std::string_view key, double v) {
  SetScalar(key, GgufValueType::kFloat64, v);
}
void GgufWriter::SetBool(std::string_view key, bool v) {
  SetScalar<uint8_t>(key, GgufValueType::kBool, v ? 1 : 0);
}

void GgufWriter::SetString(std::string_view key, std::string_view value) {
  std::vector<std::byte> encoded;
  AppendString(encoded, value);
  Set(key, GgufValueType::kString, GgufValueType::kString, 0, std::move(encoded));
}

template <typename T>
void GgufWriter::SetArray(std::string_view key, std::span<const T> values) {
  std::vector<std::byte> encoded;
  encoded.reserve(values.size() * sizeof(T));
  for (const T& value : values) {
    if constexpr (std::is_same_v<T, bool>) {
      Append<uint8_t>(encoded, value ? 1 : 0);
    } else {
      Append<T>(encoded, value);
    }
  }
  Set(key, GgufValueType::kArray, TypeOf<T>(), values.size(), std::move(encoded));
}

template void GgufWriter::SetArray(std::string_view, std::span<const uint8_t>);
template void GgufWriter::SetArray(std::string_view, std::span<const int8_t>);
template void GgufWriter::SetArray(std::string_view, std::span<const uint16_t>);
template void GgufWriter::SetArray(std::string_view, std::span<const int16_t>);
template void GgufWriter::SetArray(std::string_view, std::span<const uint32_t>);
template void GgufWriter::SetArray(std::string_view, std::span<const int32_t>);
template void GgufWriter::SetArray(std::string_view, std::span<const uint64_t>);
template void GgufWriter::SetArray(std::string_view, std::span<const int64_t>);
template void GgufWriter::SetArray(std::string_view, std::span<const float>);
template void GgufWriter::SetArray(std::string_view, std::span<const double>);
template void GgufWriter::SetArray(std::string_view, std::span<const bool>);

void GgufWriter::SetStringArray(std::string_view key, std::span<const std::string_view> values) {
  std::vector<std::byte> encoded;
  for (std::string_view value : values) AppendString(encoded, value);
  Set(key, GgufValueType::kArray, GgufValueType::kString, values.size(), std::move(encoded));
}

void GgufWriter::SetStringArray(std::string_view key, std::span<const std::string> values) {
  std::vector<std::byte> encoded;
  for (const std::string& value : values) AppendString(encoded, value);
  Set(key, GgufValueType::kArray, GgufValueType::kString, values.size(), std::move(encoded));
}

void GgufWriter::CopyValue(const GgufFile::KeyValue& kv) {
  Set(kv.key, kv.type, kv.array_type, kv.array_size,
      std::vector<std::byte>(kv.encoded.begin(), kv.encoded.end()));
}

bool GgufWriter::HasKey(std::string_view key) const {
  return entry_index_.contains(std::string(key));
}

void GgufWriter::RemoveKey(std::string_view key) {
  const auto it = entry_index_.find(std::string(key));
  if (it == entry_index_.end()) return;
  entries_.erase(entries_.begin() + static_cast<ptrdiff_t>(it->second));
  entry_index_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) entry_index_.emplace(entries_[i].key, i);
}

absl::StatusOr<uint64_t> GgufWriter::Alignment() const {
  const auto it = entry_index_.find(std::string(kWriterAlignmentKey));
  if (it == entry_index_.end()) return kGgufDefaultAlignment;
  const Entry& entry = entries_[it->second];
  uint32_t alignment = 0;
  if (entry.type != GgufValueType::kUint32 || entry.encoded.size() != sizeof(alignment)) {
    return absl::InvalidArgumentError(
        fmt::format("gguf: metadata key '{}' must be u32", kWriterAlignmentKey));
  }
  std::memcpy(&alignment, entry.encoded.data(), sizeof(alignment));
  if (!std::has_single_bit(alignment)) {
    return absl::InvalidArgumentError(
        fmt::format("gguf: metadata key '{}' is {}, not a power of two", kWriterAlignmentKey, alignment));
  }
  return alignment;
}

// ---- Tensors ----------------------------------------------------------------------------

absl::StatusOr<GgufWriter::Tensor> GgufWriter::CheckTensor(std::string_view name,
                                                           std::vector<int64_t> dims,
                                                           GgmlType type) const {
  if (name.empty() || name.size() > kGgufMaxTensorNameBytes) {
    return absl::InvalidArgumentError(fmt::format(
        "gguf: tensor name '{}' must be 1 to {} bytes long", name, kGgufMaxTensorNameBytes));
  }
  if (tensor_index_.contains(std::string(name))) {
    return absl::InvalidArgumentError(fmt::format("gguf: duplicate tensor name '{}'", name));
  }
  if (dims.size() > kGgufMaxDims) {
    return absl::InvalidArgumentError(
        fmt::format("gguf: tensor '{}' has {} dims (at most {})", name, dims.size(), kGgufMaxDims));
  }
  uint64_t elements = 1;
  for (int64_t dim : dims) {
    if (dim < 0) {
      return absl::InvalidArgumentError(fmt::format("gguf: tensor '{}' has a negative dim", name));
    }
    if (dim != 0 && elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) /
                                   static_cast<uint64_t>(dim)) {
      elements = std::numeric_limits<uint64_t>::max();  // overflow, unless a later dim is 0
    } else {
      elements *= static_cast<uint64_t>(dim);
    }
  }
  for (int64_t dim : dims) {
    if (dim == 0) elements = 0;
  }
  if (elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError(fmt::format("gguf: tensor '{}' has too many elements", name));
  }
  const auto type_id = static_cast<uint32_t>(type);
  const std::optional<GgmlTypeTraits> traits = GetGgmlTypeTraits(type_id);
  if (!traits) {
    return absl::InvalidArgumentError(
        fmt::format("gguf: tensor '{}' has unknown type id {}", name, type_id));
  }
  const int64_t ne0 = dims.empty() ? 1 : dims[0];
  if (ne0 % traits->block_elements != 0) {
    return absl::InvalidArgumentError(
        fmt::format("gguf: tensor '{}': ne[0] = {} is not a multiple of {}'s block size {}", name,
                    ne0, traits->name, traits->block_elements));
  }
  const std::optional<uint64_t> bytes = GgmlRowBytes(type_id, elements);
  if (!bytes) {
    return absl::InvalidArgumentError(fmt::format("gguf: tensor '{}' is too large", name));
  }
  return Tensor{.name = std::string(name), .dims = std::move(dims), .type = type, .bytes = *bytes};
}

absl::Status GgufWriter::AddTensorView(std::string_view name, std::vector<int64_t> dims,
                                       GgmlType type, std::span<const std::byte> data) {
  TP_ASSIGN_OR_RETURN(Tensor tensor, CheckTensor(name, std::move(dims), type));
  if (data.size() != tensor.bytes) {
    return absl::InvalidArgumentError(fmt::format(
        "gguf: tensor '{}' has {} bytes of data, expected {}", name, data.size(), tensor.bytes));
  }
  tensor.view = data;
  tensor_index_.emplace(tensor.name, tensors_.size());
  tensors_.push_back(std::move(tensor));
  return absl::OkStatus();
}

absl::Status GgufWriter::AddTensor(std::string_view name, std::vector<int64_t> dims, GgmlType type,
                                   std::span<const std::byte> data) {
  TP_RETURN_IF_ERROR(AddTensorView(name, std::move(dims), type, data));
  Tensor& tensor = tensors_.back();
  tensor.owned.assign(data.begin(), data.end());
  tensor.view = tensor.owned;  // the vector's heap buffer survives moves of the Tensor
  return absl::OkStatus();
}

absl::Status GgufWriter::AddTensorStream(std::string_view name, std::vector<int64_t> dims,
                                         GgmlType type, TensorProducer producer) {
  TP_ASSIGN_OR_RETURN(Tensor tensor, CheckTensor(name, std::move(dims), type));
  if (!producer) {
    return absl::InvalidArgumentError(fmt::format("gguf: tensor '{}' has no producer", name));
  }
  tensor.producer = std::move(producer);
  tensor_index_.emplace(tensor.name, tensors_.size());
  tensors_.push_back(std::move(tensor));
  return absl::OkStatus();
}

// ---- Writing ----------------------------------------------------------------------------

absl::Status GgufWriter::Write(Sink& sink) const {
  TP_ASSIGN_OR_RETURN(const uint64_t alignment, Alignment());
  std::vector<std::byte> header;
  AppendBytes(header, "GGUF", 4);
  Append<uint32_t>(header, kWriteVersion);
  Append<uint64_t>(header, tensors_.size());
  Append<uint64_t>(header, entries_.size());
  for (const Entry& entry : entries_) {
    if (entry.key.empty()) return absl::InvalidArgumentError("gguf: empty metadata key");
    AppendString(header, entry.key);
    Append<uint32_t>(header, static_cast<uint32_t>(entry.type));
    if (entry.type == GgufValueType::kArray) {
      Append<uint32_t>(header, static_cast<uint32_t>(entry.array_type));
      Append<uint64_t>(header, entry.array_size);
    }
    AppendBytes(header, entry.encoded.data(), entry.encoded.size());
  }
  uint64_t offset = 0;
  for (const Tensor& tensor : tensors_) {
    AppendString(header, tensor.name);
    Append<uint32_t>(header, static_cast<uint32_t>(tensor.dims.size()));
    for (int64_t dim : tensor.dims) Append<int64_t>(header, dim);
    Append<uint32_t>(header, static_cast<uint32_t>(tensor.type));
    Append<uint64_t>(header, offset);
    if (tensor.bytes > std::numeric_limits<uint64_t>::max() - alignment - offset) {
      return absl::InvalidArgumentError("gguf: tensor data exceeds 2^64 bytes");
    }
    offset += AlignUp(tensor.bytes, alignment);
  }
  TP_RETURN_IF_ERROR(sink.Write(header));
  TP_RETURN_IF_ERROR(sink.PadTo(alignment));

  for (const Tensor& tensor : tensors_) {
    if (!tensor.producer) {
      TP_RETURN_IF_ERROR(sink.Write(tensor.view));
    } else {
      uint64_t produced = 0;
      auto write = [&](std::span<const std::byte> chunk) -> absl::Status {
        if (chunk.size() > tensor.bytes - produced) {
          return absl::InvalidArgumentError(fmt::format(
              "gguf: tensor '{}' producer wrote more than {} bytes", tensor.name, tensor.bytes));
        }
        produced += chunk.size();
        return sink.Write(chunk);
      };
      TP_RETURN_IF_ERROR(tensor.producer(write));
      if (produced != tensor.bytes) {
        return absl::InvalidArgumentError(
            fmt::format("gguf: tensor '{}' producer wrote {} of {} bytes", tensor.name, produced,
                        tensor.bytes));
      }
    }
    TP_RETURN_IF_ERROR(sink.PadTo(alignment));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::byte>> GgufWriter::WriteToBuffer() const {
  BufferSink sink;
  TP_RETURN_IF_ERROR(Write(sink));
  return sink.Take();
}

absl::Status GgufWriter::WriteTo(const std::string& path) const {
  std::string temp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) {
    return absl::PermissionDeniedError(fmt::format(
        "gguf: cannot create a temporary file next to {}: {}", path, std::strerror(errno)));
  }
  ::fchmod(fd, 0644);
  std::FILE* file = ::fdopen(fd, "wb");
  if (file == nullptr) {
    ::close(fd);
    ::unlink(temp.c_str());
    return absl::InternalError(fmt::format("gguf: fdopen {}: {}", temp, std::strerror(errno)));
  }
  std::setvbuf(file, nullptr, _IOFBF, 1 << 20);
  FileSink sink(file, temp);
  absl::Status status = Write(sink);
  if (status.ok() && (std::fflush(file) != 0 || ::fsync(fd) != 0)) {
    status =
        absl::InternalError(fmt::format("gguf: cannot write {}: {}", temp, std::strerror(errno)));
  }
  if (std::fclose(file) != 0 && status.ok()) {
    status =
        absl::InternalError(fmt::format("gguf: cannot close {}: {}", temp, std::strerror(errno)));
  }
  if (status.ok() && std::rename(temp.c_str(), path.c_str()) != 0) {
    status = absl::InternalError(
        fmt::format("gguf: cannot rename {} to {}: {}", temp, path, std::strerror(errno)));
  }
  if (!status.ok()) ::unlink(temp.c_str());
  return status;
}

}  // namespace triplane::engine
