// GgufWriter: what it refuses to write, streaming, atomic replacement, and that a full
// round trip (write -> read -> copy -> write) is byte-identical.
#include "engine/gguf/gguf_writer.h"

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/gguf/gguf_file.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_message.h"

namespace triplane::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using triplane::testing::Message;

std::string TempPath(std::string_view name) {
  return (std::filesystem::path(::testing::TempDir()) / fmt::format("{}_{}", getpid(), name))
      .string();
}

TEST(GgufWriterTest, RejectsInvalidTensors) {
  GgufWriter writer;
  const std::vector<std::byte> f32x4(16);
  EXPECT_TRUE(writer.AddTensor("ok", {4}, GgmlType::kF32, f32x4).ok());
  EXPECT_THAT(Message(writer.AddTensor("ok", {4}, GgmlType::kF32, f32x4)),
              HasSubstr("duplicate tensor name 'ok'"));
  EXPECT_FALSE(writer.AddTensor("", {4}, GgmlType::kF32, f32x4).ok());
  EXPECT_FALSE(writer.AddTensor(std::string(64, 'x'), {4}, GgmlType::kF32, f32x4).ok());
  EXPECT_THAT(Message(writer.AddTensor("a", {1, 1, 1, 1, 4}, GgmlType::kF32, f32x4)),
              HasSubstr("5 dims"));
  EXPECT_FALSE(writer.AddTensor("b", {-4}, GgmlType::kF32, f32x4).ok());
  EXPECT_THAT(Message(writer.AddTensor("c", {5}, GgmlType::kF32, f32x4)),
              HasSubstr("16 bytes of data, expected 20"));
  EXPECT_THAT(Message(writer.AddTensor("d", {16}, GgmlType::kQ4_0, f32x4)),
              HasSubstr("block size 32"));
  EXPECT_FALSE(writer.AddTensor("e", {4}, static_cast<GgmlType>(77), f32x4).ok());
  EXPECT_FALSE(
      writer.AddTensor("f", {int64_t{1} << 62, int64_t{1} << 62}, GgmlType::kF32, f32x4).ok());
}

TEST(GgufWriterTest, RejectsBadAlignmentAndEmptyKeys) {
  GgufWriter writer;
  writer.SetUint32("general.alignment", 24);
  EXPECT_THAT(Message(writer.WriteToBuffer().status()), HasSubstr("not a power of two"));
  writer.SetString("general.alignment", "32");
  EXPECT_THAT(Message(writer.WriteToBuffer().status()), HasSubstr("must be u32"));
  writer.RemoveKey("general.alignment");
  EXPECT_TRUE(writer.WriteToBuffer().ok());
  writer.SetInt32("", 1);
  EXPECT_THAT(Message(writer.WriteToBuffer().status()), HasSubstr("empty metadata key"));
}

TEST(GgufWriterTest, SettingAKeyAgainReplacesItInPlace) {
  GgufWriter writer;
  writer.SetInt32("a", 1);
  writer.SetInt32("b", 2);
  writer.SetString("a", "again");
  EXPECT_TRUE(writer.HasKey("a"));
  auto bytes = writer.WriteToBuffer();
  ASSERT_TRUE(bytes.ok());
  auto file = GgufFile::FromBuffer(*bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->metadata().size(), 2u);
  EXPECT_EQ((*file)->metadata()[0].key, "a");
  EXPECT_EQ((*file)->GetString("a"), "again");
}

TEST(GgufWriterTest, StreamsTensorDataFromAProducer) {
  GgufWriter writer;
  auto producer = [](GgufWriter::ChunkWriter write) -> absl::Status {
    for (int i = 0; i < 4; ++i) {
      const float value = static_cast<float>(i);
      absl::Status status = write(std::as_bytes(std::span(&value, 1)));
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  };
  ASSERT_TRUE(writer.AddTensorStream("streamed", {4}, GgmlType::kF32, producer).ok());
  auto bytes = writer.WriteToBuffer();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto file = GgufFile::FromBuffer(*bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  std::span<const std::byte> data = (*file)->TensorData(*(*file)->FindTensor("streamed"));
  std::vector<float> values(4);
  ASSERT_EQ(data.size(), 16u);
  std::memcpy(values.data(), data.data(), 16);
  EXPECT_THAT(values, ElementsAre(0, 1, 2, 3));

  GgufWriter short_writer;
  ASSERT_TRUE(short_writer.AddTensorStream("short", {8}, GgmlType::kF32, producer).ok());
  EXPECT_THAT(Message(short_writer.WriteToBuffer().status()), HasSubstr("wrote 16 of 32 bytes"));
  GgufWriter long_writer;
  ASSERT_TRUE(long_writer.AddTensorStream("long", {2}, GgmlType::kF32, producer).ok());
  EXPECT_THAT(Message(long_writer.WriteToBuffer().status()), HasSubstr("more than 8 bytes"));
}

TEST(GgufWriterTest, WriteToReplacesTheFileAtomically) {
  const std::string path = TempPath("atomic.gguf");
  GgufWriter first;
  first.SetString("general.name", "first");
  ASSERT_TRUE(first.WriteTo(path).ok());

  // A failing write leaves the old file and no temporary behind.
  GgufWriter failing;
  failing.SetString("general.name", "second");
  ASSERT_TRUE(failing
                  .AddTensorStream("t", {4}, GgmlType::kF32,
                                   [](GgufWriter::ChunkWriter) {
                                     return absl::InternalError("source went away");
                                   })
                  .ok());
  EXPECT_THAT(Message(failing.WriteTo(path)), HasSubstr("source went away"));
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->GetString("general.name"), "first");
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    EXPECT_THAT(entry.path().filename().string(),
                ::testing::Not(HasSubstr(fmt::format("{}_atomic.gguf.tmp", getpid()))));
  }
  std::filesystem::remove(path);

  EXPECT_FALSE(first.WriteTo("/nonexistent-dir/x.gguf").ok());
}

TEST(GgufWriterTest, CopyingEveryValueAndTensorReproducesTheFileExactly) {
  GgufWriter writer;
  writer.SetString("general.architecture", "llama");
  writer.SetUint32("general.alignment", 64);
  writer.SetUint64("llama.context_length", 4096);
  writer.SetFloat64("f64", 0.1);
  writer.SetArray<int16_t>("i16s", {-1, 2});
  writer.SetStringArray("tokens", std::vector<std::string>{"<unk>", "a", "\xe4\xb8\xad"});
  std::vector<std::byte> q4(3 * 18);
  for (size_t i = 0; i < q4.size(); ++i) q4[i] = static_cast<std::byte>(i * 7);
  ASSERT_TRUE(writer.AddTensor("blk.0.ffn_down.weight", {32, 3}, GgmlType::kQ4_0, q4).ok());
  ASSERT_TRUE(writer.AddTensor("bias", {3}, GgmlType::kF16, std::vector<std::byte>(6)).ok());
  auto bytes = writer.WriteToBuffer();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto file = GgufFile::FromBuffer(*bytes);
  ASSERT_TRUE(file.ok()) << file.status();

  GgufWriter copy;
  for (const GgufFile::KeyValue& kv : (*file)->metadata()) copy.CopyValue(kv);
  for (const GgufTensorInfo& t : (*file)->tensors()) {
    ASSERT_TRUE(copy.AddTensorView(t.name, t.dims, t.type, (*file)->TensorData(t)).ok());
  }
  auto copied = copy.WriteToBuffer();
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_EQ(*copied, *bytes);
}

}  // namespace
}  // namespace triplane::engine
