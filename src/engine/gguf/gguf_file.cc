#include "engine/gguf/gguf_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/status/status.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "fmt/format.h"
#include "fmt/ranges.h"

namespace triplane::engine {

static_assert(std::endian::native == std::endian::little,
              "GGUF is read by copying little-endian fields as they are");
static_assert(sizeof(size_t) == 8, "offsets are 64-bit");

namespace {

constexpr char kGgufMagic[4] = {'G', 'G', 'U', 'F'};
constexpr std::string_view kAlignmentKey = "general.alignment";
// Smallest possible encodings, to bound counts before reserving memory for them.
// A metadata entry: key length (8) + a 1-byte key + type (4) + a 1-byte value.
constexpr uint64_t kMinKeyValueBytes = 8 + 1 + 4 + 1;
// A tensor info: name length (8) + a 1-byte name + n_dims (4) + type (4) + offset (8).
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 4 + 8;

// `text` with control and non-ASCII bytes escaped and long text cut, for error messages
// about hostile files.
std::string Printable(std::string_view text) {
  constexpr size_t kMaxShown = 80;
  std::string out;
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (text.size() > kMaxShown) out += "...";
  return out;
}

template <typename T>
T Load(const std::byte* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

// Decodes one fixed-size value. REQUIRES: `p` has GgufValueTypeSize(type) bytes.
GgufScalar DecodeFixed(GgufValueType type, const std::byte* p) {
  switch (type) {
    case GgufValueType::kUint8:
      return Load<uint8_t>(p);
    case GgufValueType::kInt8:
      return Load<int8_t>(p);
    case GgufValueType::kUint16:
      return Load<uint16_t>(p);
    case GgufValueType::kInt16:
      return Load<int16_t>(p);
    case GgufValueType::kUint32:
      return Load<uint32_t>(p);
    case GgufValueType::kInt32:
      return Load<int32_t>(p);
    case GgufValueType::kFloat32:
      return Load<float>(p);
    case GgufValueType::kBool:
      return Load<uint8_t>(p) != 0;
    case GgufValueType::kUint64:
      return Load<uint64_t>(p);
    case GgufValueType::kInt64:
      return Load<int64_t>(p);
    case GgufValueType::kFloat64:
      return Load<double>(p);
    case GgufValueType::kString:
    case GgufValueType::kArray:
      break;
  }
  return uint8_t{0};
}

// Reads the length-prefixed string at `*pos` of `bytes` and advances `*pos`; nullopt
// when it does not fit (only for hand-made KeyValues: parsed ones are validated).
std::optional<std::string_view> DecodeString(std::span<const std::byte> bytes, size_t* pos) {
  if (bytes.size() - *pos < sizeof(uint64_t)) return std::nullopt;
  const uint64_t length = Load<uint64_t>(bytes.data() + *pos);
  *pos += sizeof(uint64_t);
  if (length > bytes.size() - *pos) return std::nullopt;
  std::string_view text(reinterpret_cast<const char*>(bytes.data() + *pos), length);
  *pos += length;
  return text;
}

std::string DescribeType(const GgufFile::KeyValue& kv) {
  if (kv.type != GgufValueType::kArray) return std::string(GgufValueTypeName(kv.type));
  return fmt::format("arr[{}]", GgufValueTypeName(kv.array_type));
}

}  // namespace

// ---- KeyValue ---------------------------------------------------------------------------

GgufScalar GgufFile::KeyValue::Scalar() const {
  if (type == GgufValueType::kString) {
    size_t pos = 0;
    return DecodeString(encoded, &pos).value_or(std::string_view());
  }
  const std::optional<size_t> size = GgufValueTypeSize(type);
  if (!size || encoded.size() < *size) return uint8_t{0};
  return DecodeFixed(type, encoded.data());
}

void GgufFile::KeyValue::ForEachElement(
    absl::FunctionRef<bool(uint64_t, const GgufScalar&)> fn) const {
  if (type != GgufValueType::kArray) return;
  if (array_type == GgufValueType::kString) {
    size_t pos = 0;
    for (uint64_t i = 0; i < array_size; ++i) {
      const std::optional<std::string_view> text = DecodeString(encoded, &pos);
      if (!text || !fn(i, GgufScalar(*text))) return;
    }
    return;
  }
  const std::optional<size_t> size = GgufValueTypeSize(array_type);
  if (!size) return;
  const uint64_t count = std::min<uint64_t>(array_size, encoded.size() / *size);
  for (uint64_t i = 0; i < count; ++i) {
    if (!fn(i, DecodeFixed(array_type, encoded.data() + i * *size))) return;
  }
}

// ---- Parser -----------------------------------------------------------------------------

// Walks the header once, bounds-checking every read against the buffer.
class GgufFile::Parser {
 public:
  explicit Parser(GgufFile& file) : file_(file), bytes_(file.bytes_) {}

  absl::Status Parse() {
    TP_RETURN_IF_ERROR(ParseHeader());
    TP_RETURN_IF_ERROR(ParseMetadata());
    TP_RETURN_IF_ERROR(ParseAlignment());
    TP_RETURN_IF_ERROR(ParseTensorInfos());
    return CheckTensorData();
  }

 private:
  uint64_t remaining() const { return bytes_.size() - pos_; }

  // DataLoss unless `n` more bytes follow `pos_`.
  absl::Status Need(uint64_t n, std::string_view what) const {
    if (n <= remaining()) return absl::OkStatus();
    return absl::DataLossError(
        fmt::format("gguf: {} at offset {} needs {} bytes but the file ends at {} bytes", what,
                    pos_, n, bytes_.size()));
  }

  template <typename T>
  absl::StatusOr<T> Read(std::string_view what) {
    TP_RETURN_IF_ERROR(Need(sizeof(T), what));
    const T value = Load<T>(bytes_.data() + pos_);
    pos_ += sizeof(T);
    return value;
  }

  absl::StatusOr<std::string_view> ReadString(std::string_view what) {
    const uint64_t at = pos_;
    TP_ASSIGN_OR_RETURN(const uint64_t length, Read<uint64_t>(what));
    if (length > remaining()) {
      return absl::DataLossError(fmt::format(
          "gguf: {} at offset {} claims {} bytes but only {} remain in the file ({} bytes)", what,
          at, length, remaining(), bytes_.size()));
    }
    std::string_view text(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return text;
  }

  absl::Status ParseHeader() {
    TP_RETURN_IF_ERROR(Need(sizeof(kGgufMagic), "magic"));
    if (std::memcmp(bytes_.data(), kGgufMagic, sizeof(kGgufMagic)) != 0) {
      // The file's bytes stay out of the message: it can reach an API caller who named
      // some other file (e.g. a path on the server) and must learn nothing of its content.
      return absl::InvalidArgumentError("gguf: not a GGUF file: it does not start with the magic 'GGUF'");
    }
    pos_ = sizeof(kGgufMagic);
    TP_ASSIGN_OR_RETURN(file_.version_, Read<uint32_t>("version"));
    const uint32_t version = file_.version_;
    if (version == 1) {
      return absl::InvalidArgumentError(
          "gguf: version 1 files are not supported (re-convert with a current llama.cpp)");
    }
    if (version != 0 && (version & 0xffff) == 0) {
      return absl::InvalidArgumentError(fmt::format(
          "gguf: version {:#x} at offset 4: a big-endian file? only little-endian is supported",
          version));
    }
    if (version != 2 && version != 3) {
      return absl::InvalidArgumentError(
          fmt::format("gguf: unsupported version {} at offset 4 (supported: 2, 3)", version));
    }
    TP_ASSIGN_OR_RETURN(n_tensors_, ReadCount("tensor count", kMinTensorInfoBytes));
    TP_ASSIGN_OR_RETURN(n_kv_, ReadCount("metadata count", kMinKeyValueBytes));
    return absl::OkStatus();
  }

  // A u64 count of items each at least `min_bytes` long, checked against the rest of the
  // file so that reserving memory for it is safe.
  absl::StatusOr<uint64_t> ReadCount(std::string_view what, uint64_t min_bytes) {
    const uint64_t at = pos_;
    TP_ASSIGN_OR_RETURN(const uint64_t count, Read<uint64_t>(what));
    // Both counts are followed by at least the other count's 8 bytes or nothing; the
    // bound below is loose but never lets a count exceed what the file could hold.
    if (count > remaining() / min_bytes) {
      return absl::DataLossError(
          fmt::format("gguf: {} {} at offset {} cannot fit in the {} bytes left in the file", what,
                      count, at, remaining()));
    }
    return count;
  }

  absl::Status ParseMetadata() {
    file_.metadata_.reserve(n_kv_);
    file_.key_index_.reserve(n_kv_);
    for (uint64_t i = 0; i < n_kv_; ++i) {
      const uint64_t at = pos_;
      TP_ASSIGN_OR_RETURN(const std::string_view key, ReadString("metadata key"));
      if (key.empty()) {
        return absl::InvalidArgumentError(
            fmt::format("gguf: metadata entry {} at offset {} has an empty key", i, at));
      }
      if (file_.key_index_.contains(key)) {
        return absl::InvalidArgumentError(
            fmt::format("gguf: duplicate metadata key '{}' at offset {}", Printable(key), at));
      }
      absl::Status status = ParseValue(key);
      if (!status.ok()) {
        return absl::Status(
            status.code(),
            fmt::format("{} (metadata key '{}')", common::ToStd(status.message()), Printable(key)));
      }
      file_.key_index_.emplace(key, file_.metadata_.size() - 1);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<GgufValueType> ReadValueType(std::string_view what) {
    const uint64_t at = pos_;
    TP_ASSIGN_OR_RETURN(const uint32_t type, Read<uint32_t>(what));
    if (!IsValidGgufValueType(type)) {
      return absl::InvalidArgumentError(
          fmt::format("gguf: invalid {} {} at offset {}", what, type, at));
    }
    return static_cast<GgufValueType>(type);
  }

  // Parses the value after `key` and appends the entry to the file's metadata.
  absl::Status ParseValue(std::string_view key) {
    GgufFile::KeyValue kv{.key = key};
    TP_ASSIGN_OR_RETURN(kv.type, ReadValueType("value type"));
    kv.array_type = kv.type;
    uint64_t start = pos_;
    if (kv.type == GgufValueType::kString) {
      TP_RETURN_IF_ERROR(ReadString("string value").status());
    } else if (kv.type != GgufValueType::kArray) {
      TP_RETURN_IF_ERROR(Need(*GgufValueTypeSize(kv.type), "value"));
      pos_ += *GgufValueTypeSize(kv.type);
    } else {
      const uint64_t type_at = pos_;
      TP_ASSIGN_OR_RETURN(kv.array_type, ReadValueType("array element type"));
      if (kv.array_type == GgufValueType::kArray) {
        return absl::InvalidArgumentError(fmt::format(
            "gguf: array of arrays at offset {} (nested arrays are not supported)", type_at));
      }
      const uint64_t count_at = pos_;
      TP_ASSIGN_OR_RETURN(kv.array_size, Read<uint64_t>("array length"));
      start = pos_;
      if (kv.array_type == GgufValueType::kString) {
        // Bound the count first (every string takes at least its 8-byte length), then
        // walk the strings: no allocation, linear in the array's bytes.
        if (kv.array_size > remaining() / sizeof(uint64_t)) {
          return absl::DataLossError(
              fmt::format("gguf: array of {} strings at offset {} cannot fit in the {} bytes left",
                          kv.array_size, count_at, remaining()));
        }
        for (uint64_t e = 0; e < kv.array_size; ++e) {
          TP_RETURN_IF_ERROR(ReadString("array string").status());
        }
      } else {
        const uint64_t size = *GgufValueTypeSize(kv.array_type);
        if (kv.array_size > remaining() / size) {
          return absl::DataLossError(fmt::format(
              "gguf: array of {} x {} at offset {} needs more than the {} bytes left in the file",
              kv.array_size, GgufValueTypeName(kv.array_type), count_at, remaining()));
        }
        pos_ += kv.array_size * size;
      }
    }
    kv.encoded = bytes_.subspan(start, pos_ - start);
    file_.metadata_.push_back(kv);
    return absl::OkStatus();
  }

  absl::Status ParseAlignment() {
    const GgufFile::KeyValue* kv = file_.FindKey(kAlignmentKey);
    if (kv == nullptr) return absl::OkStatus();
    if (kv->type != GgufValueType::kUint32) {
      return absl::InvalidArgumentError(fmt::format("gguf: metadata key '{}' must be u32, not {}",
                                                    kAlignmentKey, DescribeType(*kv)));
    }
    const uint32_t alignment = std::get<uint32_t>(kv->Scalar());
    if (!std::has_single_bit(alignment)) {
      return absl::InvalidArgumentError(fmt::format(
          "gguf: metadata key '{}' is {}, not a power of two", kAlignmentKey, alignment));
    }
    file_.alignment_ = alignment;
    return absl::OkStatus();
  }

  absl::Status ParseTensorInfos() {
    file_.tensors_.reserve(n_tensors_);
    file_.tensor_index_.reserve(n_tensors_);
    for (uint64_t i = 0; i < n_tensors_; ++i) {
      const uint64_t at = pos_;
      TP_ASSIGN_OR_RETURN(const std::string_view name, ReadString("tensor name"));
      if (name.empty()) {
        return absl::InvalidArgumentError(
            fmt::format("gguf: tensor {} at offset {} has an empty name", i, at));
      }
      if (name.size() > kGgufMaxTensorNameBytes) {
        return absl::InvalidArgumentError(
            fmt::format("gguf: tensor name '{}' at offset {} is {} bytes long (at most {})",
                        Printable(name), at, name.size(), kGgufMaxTensorNameBytes));
      }
      if (file_.tensor_index_.contains(name)) {
        return absl::InvalidArgumentError(
            fmt::format("gguf: duplicate tensor name '{}' at offset {}", Printable(name), at));
      }
      absl::StatusOr<GgufTensorInfo> info = ParseTensorInfo(name);
      if (!info.ok()) {
        return absl::Status(info.status().code(),
                            fmt::format("{} (tensor '{}')", common::ToStd(info.status().message()),
                                        Printable(name)));
      }
      file_.tensor_index_.emplace(name, file_.tensors_.size());
      file_.tensors_.push_back(*std::move(info));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<GgufTensorInfo> ParseTensorInfo(std::string_view name) {
    GgufTensorInfo info{.name = std::string(name)};
    const uint64_t dims_at = pos_;
    TP_ASSIGN_OR_RETURN(const uint32_t n_dims, Read<uint32_t>("dimension count"));
    if (n_dims > kGgufMaxDims) {
      return absl::InvalidArgumentError(fmt::format("gguf: {} dimensions at offset {} (at most {})",
                                                    n_dims, dims_at, kGgufMaxDims));
    }
    int64_t elements = 1;
    bool overflow = false;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t at = pos_;
      TP_ASSIGN_OR_RETURN(const int64_t dim, Read<int64_t>("dimension"));
      if (dim < 0) {
        return absl::InvalidArgumentError(
            fmt::format("gguf: dimension {} is {} at offset {}", d, dim, at));
      }
      info.dims.push_back(dim);
      if (dim == 0) {
        elements = 0;
      } else if (elements > std::numeric_limits<int64_t>::max() / dim) {
        overflow = true;
      } else {
        elements *= dim;
      }
    }
    // A zero dim anywhere makes the tensor empty, even after an "overflowing" prefix.
    if (overflow && elements != 0) {
      return absl::InvalidArgumentError(
          fmt::format("gguf: element count of shape [{}] at offset {} overflows int64",
                      fmt::join(info.dims, ", "), dims_at));
    }
    if (overflow) elements = 0;
    info.elements = elements;

    const uint64_t type_at = pos_;
    TP_ASSIGN_OR_RETURN(const uint32_t type, Read<uint32_t>("tensor type"));
    const std::optional<GgmlTypeTraits> traits = GetGgmlTypeTraits(type);
    if (!traits) {
      return absl::InvalidArgumentError(
          fmt::format("gguf: unknown tensor type id {} at offset {}", type, type_at));
    }
    info.type = static_cast<GgmlType>(type);
    const int64_t ne0 = info.dims.empty() ? 1 : info.dims[0];
    if (ne0 % traits->block_elements != 0) {
      return absl::InvalidArgumentError(fmt::format(
          "gguf: {} elements per row is not a multiple of {}'s block size {} (offset {})", ne0,
          traits->name, traits->block_elements, type_at));
    }
    const std::optional<uint64_t> bytes = GgmlRowBytes(type, static_cast<uint64_t>(elements));
    if (!bytes) {
      return absl::InvalidArgumentError(
          fmt::format("gguf: size in bytes of shape [{}] overflows (offset {})",
                      fmt::join(info.dims, ", "), dims_at));
    }
    info.bytes = *bytes;

    const uint64_t offset_at = pos_;
    TP_ASSIGN_OR_RETURN(info.offset, Read<uint64_t>("tensor data offset"));
    if (info.offset % file_.alignment_ != 0) {
      return absl::InvalidArgumentError(
          fmt::format("gguf: data offset {} at offset {} is not a multiple of the alignment {}",
                      info.offset, offset_at, file_.alignment_));
    }
    return info;
  }

  absl::Status CheckTensorData() {
    // llama.cpp pads to the alignment only when there are tensors.
    uint64_t data_offset = pos_;
    if (n_tensors_ > 0) {
      // alignment <= 2^31 and pos_ <= the file size, so this cannot overflow.
      data_offset = (pos_ + file_.alignment_ - 1) / file_.alignment_ * file_.alignment_;
      if (data_offset > bytes_.size()) {
        return absl::DataLossError(fmt::format(
            "gguf: data section at offset {} (after the tensor infos end at {}) starts past the "
            "end of the file ({} bytes)",
            data_offset, pos_, bytes_.size()));
      }
    }
    file_.data_offset_ = data_offset;
    const uint64_t data_size = bytes_.size() - data_offset;
    for (const GgufTensorInfo& t : file_.tensors_) {
      if (t.offset > data_size || t.bytes > data_size - t.offset) {
        return absl::DataLossError(fmt::format(
            "gguf: tensor '{}' data [offset {}, {} bytes] extends past the end of the file ({} "
            "bytes)",
            Printable(t.name), data_offset + t.offset, t.bytes, bytes_.size()));
      }
    }
    std::vector<size_t> order(file_.tensors_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::erase_if(order, [&](size_t i) { return file_.tensors_[i].bytes == 0; });
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return file_.tensors_[a].offset < file_.tensors_[b].offset;
    });
    for (size_t k = 1; k < order.size(); ++k) {
      const GgufTensorInfo& prev = file_.tensors_[order[k - 1]];
      const GgufTensorInfo& next = file_.tensors_[order[k]];
      if (prev.offset + prev.bytes > next.offset) {
        return absl::InvalidArgumentError(fmt::format(
            "gguf: tensor '{}' data [offset {}, {} bytes] overlaps tensor '{}' [offset {}, {} "
            "bytes]",
            Printable(next.name), data_offset + next.offset, next.bytes, Printable(prev.name),
            data_offset + prev.offset, prev.bytes));
      }
    }
    return absl::OkStatus();
  }

  GgufFile& file_;
  std::span<const std::byte> bytes_;
  uint64_t pos_ = 0;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
};

// ---- GgufFile ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBuffer(std::span<const std::byte> bytes) {
  auto file = absl::WrapUnique(new GgufFile());
  file->bytes_ = bytes;
  TP_RETURN_IF_ERROR(Parser(*file).Parse());
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    const std::string message = fmt::format("gguf: cannot open {}: {}", path, std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message) : absl::PermissionDeniedError(message);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(fmt::format("gguf: {} is not a regular file", path));
  }
  if (st.st_size == 0) {
    ::close(fd);
    return absl::InvalidArgumentError(fmt::format("gguf: {} is empty", path));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int mmap_error = errno;
  ::close(fd);  // the mapping keeps the file open
  if (mapping == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        fmt::format("gguf: cannot map {}: {}", path, std::strerror(mmap_error)));
  }
  auto file = absl::WrapUnique(new GgufFile());
  file->mapping_ = mapping;
  file->bytes_ = std::span(static_cast<const std::byte*>(mapping), size);
  if (absl::Status status = Parser(*file).Parse(); !status.ok()) {
    std::string_view message = common::ToStd(status.message());
    if (message.starts_with("gguf: ")) message.remove_prefix(6);
    return absl::Status(status.code(), fmt::format("gguf: {}: {}", path, message));
  }
  // Huge pages for the weights where the kernel supports them for file mappings; a
  // refusal (EINVAL without CONFIG_READ_ONLY_THP_FOR_FS) only costs TLB misses.
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = (file->data_offset_ + page - 1) / page * page;
  if (start < size) {
    ::madvise(static_cast<char*>(mapping) + start, size - start, MADV_HUGEPAGE);
  }
  return file;
}

GgufFile::~GgufFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, bytes_.size());
}

const GgufFile::KeyValue* GgufFile::FindKey(std::string_view key) const {
  const auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second];
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const std::byte> GgufFile::TensorData(const GgufTensorInfo& tensor) const {
  const uint64_t data_size = bytes_.size() - data_offset_;
  // Validated at parse time for our own infos; a foreign info gets an empty span.
  if (tensor.offset > data_size || tensor.bytes > data_size - tensor.offset) return {};
  return bytes_.subspan(data_offset_ + tensor.offset, tensor.bytes);
}

std::optional<std::string_view> GgufFile::GetString(std::string_view key) const {
  const KeyValue* kv = FindKey(key);
  if (kv == nullptr || kv->type != GgufValueType::kString) return std::nullopt;
  return std::get<std::string_view>(kv->Scalar());
}

std::optional<int64_t> GgufFile::GetInt(std::string_view key) const {
  const KeyValue* kv = FindKey(key);
  if (kv == nullptr || kv->type == GgufValueType::kArray) return std::nullopt;
  return GgufScalarToInt(kv->Scalar());
}

std::optional<double> GgufFile::GetFloat(std::string_view key) const {
  const KeyValue* kv = FindKey(key);
  if (kv == nullptr || kv->type == GgufValueType::kArray) return std::nullopt;
  return GgufScalarToFloat(kv->Scalar());
}

std::optional<bool> GgufFile::GetBool(std::string_view key) const {
  const KeyValue* kv = FindKey(key);
  if (kv == nullptr || kv->type != GgufValueType::kBool) return std::nullopt;
  return std::get<bool>(kv->Scalar());
}

namespace {

// The array at `key`, or NotFound / InvalidArgument when it is absent or not an array
// of one of `accepted` element types.
absl::StatusOr<const GgufFile::KeyValue*> FindArray(const GgufFile& file, std::string_view key,
                                                    std::initializer_list<GgufValueType> accepted,
                                                    std::string_view expected) {
  const GgufFile::KeyValue* kv = file.FindKey(key);
  if (kv == nullptr) {
    return absl::NotFoundError(fmt::format("gguf: no metadata key '{}'", Printable(key)));
  }
  if (kv->type != GgufValueType::kArray ||
      std::find(accepted.begin(), accepted.end(), kv->array_type) == accepted.end()) {
    return absl::InvalidArgumentError(fmt::format("gguf: metadata key '{}' is {}, expected {}",
                                                  Printable(key), DescribeType(*kv), expected));
  }
  return kv;
}

}  // namespace

absl::StatusOr<std::vector<std::string_view>> GgufFile::GetStringArray(std::string_view key) const {
  TP_ASSIGN_OR_RETURN(const KeyValue* kv,
                      FindArray(*this, key, {GgufValueType::kString}, "arr[str]"));
  std::vector<std::string_view> out;
  out.reserve(kv->array_size);  // bounded by the file size at parse time
  kv->ForEachElement([&](uint64_t, const GgufScalar& value) {
    out.push_back(std::get<std::string_view>(value));
    return true;
  });
  return out;
}

absl::StatusOr<std::vector<float>> GgufFile::GetFloatArray(std::string_view key) const {
  TP_ASSIGN_OR_RETURN(
      const KeyValue* kv,
      FindArray(*this, key, {GgufValueType::kFloat32, GgufValueType::kFloat64}, "arr[f32]"));
  std::vector<float> out;
  out.reserve(kv->array_size);
  kv->ForEachElement([&](uint64_t, const GgufScalar& value) {
    out.push_back(static_cast<float>(*GgufScalarToFloat(value)));
    return true;
  });
  return out;
}

absl::StatusOr<std::vector<int32_t>> GgufFile::GetInt32Array(std::string_view key) const {
  TP_ASSIGN_OR_RETURN(const KeyValue* kv, FindArray(*this, key,
                                                    {GgufValueType::kInt8, GgufValueType::kUint8,
                                                     GgufValueType::kInt16, GgufValueType::kUint16,
                                                     GgufValueType::kInt32, GgufValueType::kUint32},
                                                    "arr[i32]"));
  std::vector<int32_t> out;
  out.reserve(kv->array_size);
  std::optional<uint64_t> bad_index;
  kv->ForEachElement([&](uint64_t i, const GgufScalar& value) {
    const std::optional<int64_t> v = GgufScalarToInt(value);
    if (!v || *v > std::numeric_limits<int32_t>::max()) {
      bad_index = i;
      return false;
    }
    out.push_back(static_cast<int32_t>(*v));
    return true;
  });
  if (bad_index) {
    return absl::InvalidArgumentError(fmt::format(
        "gguf: metadata key '{}' element {} does not fit in int32", Printable(key), *bad_index));
  }
  return out;
}

}  // namespace triplane::engine
