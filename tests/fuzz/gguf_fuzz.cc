// Fuzzes GgufFile::FromBuffer: any input must be rejected cleanly or parse into a file
// whose every metadata value and tensor span can be read. A file that parses must also
// survive a round trip through GgufWriter (copy every value and tensor, write, read back)
// with the same metadata and tensor bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <variant>

#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"

namespace triplane::engine {
namespace {

// Round trips write padding up to the alignment even without tensors; skip absurd ones
// to keep memory per input bounded.
constexpr uint64_t kMaxRoundTripAlignment = 1 << 16;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "gguf_fuzz: %s\n", what);
  std::abort();
}

// Reads every byte of `bytes` so ASan sees any out-of-bounds view.
uint64_t Touch(std::span<const std::byte> bytes) {
  uint64_t sum = 0;
  for (std::byte b : bytes) sum += static_cast<uint8_t>(b);
  return sum;
}

uint64_t TouchScalar(const GgufScalar& value) {
  if (const auto* text = std::get_if<std::string_view>(&value)) {
    return Touch(std::as_bytes(std::span(text->data(), text->size())));
  }
  return value.index();
}

uint64_t TouchEverything(const GgufFile& file) {
  uint64_t sum = file.version() + file.alignment();
  for (const GgufFile::KeyValue& kv : file.metadata()) {
    if (file.FindKey(kv.key) != &kv) Fail("FindKey does not find a listed key");
    sum += Touch(kv.encoded);
    if (kv.type == GgufValueType::kArray) {
      uint64_t count = 0;
      kv.ForEachElement([&](uint64_t, const GgufScalar& element) {
        sum += TouchScalar(element);
        ++count;
        return true;
      });
      if (count != kv.array_size) Fail("ForEachElement visited the wrong number of elements");
      if (auto strings = file.GetStringArray(kv.key); strings.ok()) {
        for (std::string_view s : *strings) sum += s.size();
      }
      if (auto floats = file.GetFloatArray(kv.key); floats.ok()) sum += floats->size();
      if (auto ints = file.GetInt32Array(kv.key); ints.ok()) sum += ints->size();
    } else {
      sum += TouchScalar(kv.Scalar());
      sum += file.GetString(kv.key).value_or("").size();
      sum += static_cast<uint64_t>(file.GetInt(kv.key).value_or(0));
      sum += static_cast<uint64_t>(file.GetFloat(kv.key).value_or(0) != 0);
      sum += file.GetBool(kv.key).value_or(false);
    }
  }
  for (const GgufTensorInfo& tensor : file.tensors()) {
    if (file.FindTensor(tensor.name) != &tensor) Fail("FindTensor does not find a listed tensor");
    const std::span<const std::byte> data = file.TensorData(tensor);
    if (data.size() != tensor.bytes) Fail("TensorData size differs from the tensor's bytes");
    sum += Touch(data);
  }
  return sum;
}

void RoundTrip(const GgufFile& file) {
  if (file.alignment() > kMaxRoundTripAlignment) return;
  GgufWriter writer;
  for (const GgufFile::KeyValue& kv : file.metadata()) writer.CopyValue(kv);
  for (const GgufTensorInfo& tensor : file.tensors()) {
    if (!writer.AddTensorView(tensor.name, tensor.dims, tensor.type, file.TensorData(tensor))
             .ok()) {
      Fail("the writer rejects a tensor the reader accepted");
    }
  }
  absl::StatusOr<std::vector<std::byte>> bytes = writer.WriteToBuffer();
  if (!bytes.ok()) Fail("the writer cannot write a file the reader accepted");
  absl::StatusOr<std::unique_ptr<GgufFile>> copy = GgufFile::FromBuffer(*bytes);
  if (!copy.ok()) Fail("the reader rejects what the writer wrote");
  const GgufFile& c = **copy;
  if (c.alignment() != file.alignment() || c.metadata().size() != file.metadata().size() ||
      c.tensors().size() != file.tensors().size()) {
    Fail("round trip changed the alignment or counts");
  }
  for (size_t i = 0; i < file.metadata().size(); ++i) {
    const GgufFile::KeyValue& a = file.metadata()[i];
    const GgufFile::KeyValue& b = c.metadata()[i];
    if (a.key != b.key || a.type != b.type || a.array_type != b.array_type ||
        a.array_size != b.array_size || !std::ranges::equal(a.encoded, b.encoded)) {
      Fail("round trip changed a metadata value");
    }
  }
  for (size_t i = 0; i < file.tensors().size(); ++i) {
    const GgufTensorInfo& a = file.tensors()[i];
    const GgufTensorInfo& b = c.tensors()[i];
    if (a.name != b.name || a.dims != b.dims || a.type != b.type || a.bytes != b.bytes ||
        !std::ranges::equal(file.TensorData(a), c.TensorData(b))) {
      Fail("round trip changed a tensor");
    }
  }
}

}  // namespace
}  // namespace triplane::engine

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using triplane::engine::GgufFile;
  absl::StatusOr<std::unique_ptr<GgufFile>> file =
      GgufFile::FromBuffer(std::span(reinterpret_cast<const std::byte*>(data), size));
  if (!file.ok()) {
    if (file.status().message().empty()) triplane::engine::Fail("an error without a message");
    return 0;
  }
  volatile uint64_t sink = triplane::engine::TouchEverything(**file);
  (void)sink;
  triplane::engine::RoundTrip(**file);
  return 0;
}
