// GgufFile: reading what GgufWriter writes, and rejecting broken or hostile files with a
// clear message instead of crashing.
#include "engine/gguf/gguf_file.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/gguf/gguf_writer.h"
#include "fmt/format.h"
#include "gguf_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/status_message.h"

namespace triplane::engine {
namespace {

using ::testing::ElementsAre;
using testing::GgufBytes;
using ::testing::HasSubstr;
using ::testing::Not;

using triplane::testing::Message;

std::vector<std::byte> Bytes(std::initializer_list<int> values) {
  std::vector<std::byte> out;
  for (int v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

std::vector<std::byte> F32Bytes(std::initializer_list<float> values) {
  std::vector<std::byte> out(values.size() * sizeof(float));
  std::memcpy(out.data(), values.begin(), out.size());
  return out;
}

std::vector<std::byte> MustWrite(const GgufWriter& writer) {
  absl::StatusOr<std::vector<std::byte>> bytes = writer.WriteToBuffer();
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *std::move(bytes) : std::vector<std::byte>{};
}

absl::Status ParseStatus(std::span<const std::byte> bytes) {
  return GgufFile::FromBuffer(bytes).status();
}

TEST(GgufFileTest, ReadsBackEveryScalarTypeTheWriterWrote) {
  GgufWriter writer;
  writer.SetUint8("u8", 200);
  writer.SetInt8("i8", -100);
  writer.SetUint16("u16", 60000);
  writer.SetInt16("i16", -30000);
  writer.SetUint32("u32", 4000000000u);
  writer.SetInt32("i32", -2000000000);
  writer.SetUint64("u64", std::numeric_limits<uint64_t>::max());
  writer.SetInt64("i64", std::numeric_limits<int64_t>::min());
  writer.SetFloat32("f32", 1.5f);
  writer.SetFloat64("f64", -2.25);
  writer.SetBool("bool", true);
  writer.SetString("str", "llama");
  const std::vector<std::byte> bytes = MustWrite(writer);

  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::FromBuffer(bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.metadata().size(), 12u);
  EXPECT_EQ(f.GetInt("u8"), 200);
  EXPECT_EQ(f.GetInt("i8"), -100);
  EXPECT_EQ(f.GetInt("u16"), 60000);
  EXPECT_EQ(f.GetInt("i16"), -30000);
  EXPECT_EQ(f.GetInt("u32"), 4000000000LL);
  EXPECT_EQ(f.GetInt("i32"), -2000000000);
  EXPECT_EQ(f.GetInt("u64"), std::nullopt);  // does not fit in int64_t
  EXPECT_EQ(f.GetInt("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f.GetFloat("f32"), 1.5);
  EXPECT_EQ(f.GetFloat("f64"), -2.25);
  EXPECT_EQ(f.GetBool("bool"), true);
  EXPECT_EQ(f.GetString("str"), "llama");
  EXPECT_EQ(std::get<uint64_t>(f.FindKey("u64")->Scalar()), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f.metadata()[0].key, "u8");
  EXPECT_EQ(f.metadata()[11].key, "str");
}

TEST(GgufFileTest, TypedGettersReturnNulloptForAbsentKeysAndOtherTypes) {
  GgufWriter writer;
  writer.SetString("name", "x");
  writer.SetInt32("n", 3);
  writer.SetBool("b", false);
  const std::vector<std::byte> bytes = MustWrite(writer);
  auto file = GgufFile::FromBuffer(bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->GetString("missing"), std::nullopt);
  EXPECT_EQ((*file)->GetString("n"), std::nullopt);
  EXPECT_EQ((*file)->GetInt("name"), std::nullopt);
  EXPECT_EQ((*file)->GetInt("b"), std::nullopt);  // bools are not integers
  EXPECT_EQ((*file)->GetFloat("n"), std::nullopt);
  EXPECT_EQ((*file)->GetBool("n"), std::nullopt);
  EXPECT_EQ((*file)->GetBool("b"), false);
}

TEST(GgufFileTest, ReadsArraysOfStringsAndNumbers) {
  GgufWriter writer;
  const std::vector<std::string> tokens = {"<s>", "", "hello", std::string("\xff\x00z", 3)};
  writer.SetStringArray("tokens", tokens);
  writer.SetArray<float>("scores", {0.5f, -1.0f});
  writer.SetArray<double>("scores64", {0.25});
  writer.SetArray<int32_t>("types", {1, -2, 3});
  writer.SetArray<uint32_t>("u32s", {7, 4000000000u});
  writer.SetArray<uint8_t>("u8s", {9});
  writer.SetArray("i64s", std::vector<int64_t>{});
  const bool flags[] = {true, false};
  writer.SetArray(std::string_view("flags"), std::span<const bool>(flags));
  const std::vector<std::byte> bytes = MustWrite(writer);
  auto file = GgufFile::FromBuffer(bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;

  absl::StatusOr<std::vector<std::string_view>> strings = f.GetStringArray("tokens");
  ASSERT_TRUE(strings.ok()) << strings.status();
  EXPECT_THAT(*strings, ElementsAre("<s>", "", "hello", std::string_view("\xff\x00z", 3)));
  EXPECT_THAT(*f.GetFloatArray("scores"), ElementsAre(0.5f, -1.0f));
  EXPECT_THAT(*f.GetFloatArray("scores64"), ElementsAre(0.25f));
  EXPECT_THAT(*f.GetInt32Array("types"), ElementsAre(1, -2, 3));
  EXPECT_THAT(*f.GetInt32Array("u8s"), ElementsAre(9));
  EXPECT_TRUE(f.GetInt32Array("i64s").status().code() == absl::StatusCode::kInvalidArgument);

  // A u32 element above INT32_MAX cannot be returned as int32.
  absl::StatusOr<std::vector<int32_t>> u32s = f.GetInt32Array("u32s");
  EXPECT_EQ(u32s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(u32s.status()), HasSubstr("element 1"));

  EXPECT_EQ(f.GetStringArray("missing").status().code(), absl::StatusCode::kNotFound);
  absl::Status wrong = f.GetStringArray("types").status();
  EXPECT_EQ(wrong.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(wrong), HasSubstr("arr[i32]"));

  const GgufFile::KeyValue* kv = f.FindKey("flags");
  ASSERT_NE(kv, nullptr);
  EXPECT_EQ(kv->type, GgufValueType::kArray);
  EXPECT_EQ(kv->array_type, GgufValueType::kBool);
  EXPECT_EQ(kv->array_size, 2u);
  std::vector<bool> seen;
  kv->ForEachElement([&](uint64_t, const GgufScalar& v) {
    seen.push_back(std::get<bool>(v));
    return true;
  });
  EXPECT_THAT(seen, ElementsAre(true, false));
}

TEST(GgufFileTest, ReadsTensorInfosAndDataZeroCopy) {
  GgufWriter writer;
  const std::vector<std::byte> norm = F32Bytes({1, 2, 3});
  std::vector<std::byte> q8(2 * 34);  // two q8_0 blocks of 32 elements
  for (size_t i = 0; i < q8.size(); ++i) q8[i] = static_cast<std::byte>(i);
  ASSERT_TRUE(writer.AddTensor("norm.weight", {3}, GgmlType::kF32, norm).ok());
  ASSERT_TRUE(writer.AddTensor("blk.0.attn_q.weight", {32, 2}, GgmlType::kQ8_0, q8).ok());
  ASSERT_TRUE(writer.AddTensor("empty", {0, 5}, GgmlType::kF16, {}).ok());
  ASSERT_TRUE(writer.AddTensor("scalar", {}, GgmlType::kI32, Bytes({1, 0, 0, 0})).ok());
  const std::vector<std::byte> bytes = MustWrite(writer);

  auto file = GgufFile::FromBuffer(bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.data_offset() % 32, 0u);

  const GgufTensorInfo* q = f.FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_THAT(q->dims, ElementsAre(32, 2));
  EXPECT_EQ(q->type, GgmlType::kQ8_0);
  EXPECT_EQ(q->elements, 64);
  EXPECT_EQ(q->bytes, 68u);
  EXPECT_EQ(q->offset, 32u);  // 12 bytes of norm, padded to 32
  std::span<const std::byte> data = f.TensorData(*q);
  EXPECT_EQ(data.data(), bytes.data() + f.data_offset() + 32);  // zero copy
  EXPECT_TRUE(std::equal(data.begin(), data.end(), q8.begin(), q8.end()));

  const GgufTensorInfo* n = f.FindTensor("norm.weight");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->offset, 0u);
  std::span<const std::byte> norm_data = f.TensorData(*n);
  EXPECT_TRUE(std::equal(norm_data.begin(), norm_data.end(), norm.begin(), norm.end()));

  EXPECT_EQ(f.FindTensor("empty")->elements, 0);
  EXPECT_EQ(f.FindTensor("empty")->bytes, 0u);
  EXPECT_TRUE(f.FindTensor("scalar")->dims.empty());
  EXPECT_EQ(f.FindTensor("scalar")->elements, 1);
  EXPECT_EQ(f.FindTensor("missing"), nullptr);
  // The file ends padded, as llama.cpp writes it.
  EXPECT_EQ(bytes.size() % 32, 0u);
}

TEST(GgufFileTest, HonoursGeneralAlignment) {
  GgufWriter writer;
  writer.SetUint32("general.alignment", 64);
  ASSERT_TRUE(writer.AddTensor("a", {1}, GgmlType::kF32, F32Bytes({1})).ok());
  ASSERT_TRUE(writer.AddTensor("b", {1}, GgmlType::kF32, F32Bytes({2})).ok());
  const std::vector<std::byte> bytes = MustWrite(writer);
  auto file = GgufFile::FromBuffer(bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->alignment(), 64u);
  EXPECT_EQ((*file)->data_offset() % 64, 0u);
  EXPECT_EQ((*file)->FindTensor("b")->offset, 64u);
}

TEST(GgufFileTest, OpensAFileFromDisk) {
  const std::string path =
      (std::filesystem::path(::testing::TempDir()) / fmt::format("open_{}.gguf", getpid()))
          .string();
  GgufWriter writer;
  writer.SetString("general.architecture", "llama");
  ASSERT_TRUE(writer.AddTensor("t", {2}, GgmlType::kF32, F32Bytes({4, 5})).ok());
  ASSERT_TRUE(writer.WriteTo(path).ok());
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->GetString("general.architecture"), "llama");
  std::span<const std::byte> data = (*file)->TensorData(*(*file)->FindTensor("t"));
  ASSERT_EQ(data.size(), 8u);
  float values[2];
  std::memcpy(values, data.data(), sizeof(values));
  EXPECT_EQ(values[1], 5.0f);
  std::filesystem::remove(path);

  absl::Status missing = GgufFile::Open(path).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(missing), HasSubstr(path));
}

TEST(GgufFileTest, ReadsVersion2) {
  GgufWriter writer;
  writer.SetInt32("x", 1);
  std::vector<std::byte> bytes = MustWrite(writer);
  bytes[4] = std::byte{2};
  auto file = GgufFile::FromBuffer(bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->version(), 2u);
}

TEST(GgufFileTest, RejectsBadMagicAndUnsupportedVersions) {
  EXPECT_THAT(Message(ParseStatus(GgufBytes().Raw("GGML").U32(3).U64(0).U64(0).span())),
              HasSubstr("not a GGUF file"));
  // What the file holds is not echoed: the path may name a file of someone else's.
  EXPECT_THAT(Message(ParseStatus(GgufBytes().Raw("root").U32(3).U64(0).U64(0).span())),
              Not(HasSubstr("root")));
  EXPECT_THAT(Message(ParseStatus(GgufBytes().Header(1, 0, 0).span())), HasSubstr("version 1"));
  EXPECT_THAT(Message(ParseStatus(GgufBytes().Header(4, 0, 0).span())),
              HasSubstr("unsupported version 4"));
  EXPECT_THAT(Message(ParseStatus(GgufBytes().Header(0x03000000, 0, 0).span())),
              HasSubstr("big-endian"));
  EXPECT_EQ(ParseStatus({}).code(), absl::StatusCode::kDataLoss);
}

TEST(GgufFileTest, RejectsEveryTruncationOfAValidFile) {
  GgufWriter writer;
  writer.SetString("general.name", "tiny");
  writer.SetStringArray("tokens", std::vector<std::string>{"a", "bc"});
  writer.SetArray<float>("scores", {1, 2});
  ASSERT_TRUE(writer.AddTensor("t", {4}, GgmlType::kF32, F32Bytes({1, 2, 3, 4})).ok());
  const std::vector<std::byte> bytes = MustWrite(writer);
  ASSERT_TRUE(ParseStatus(bytes).ok());
  // The last tensor's padding is not needed: everything shorter than its data end fails.
  auto file = GgufFile::FromBuffer(bytes);
  const size_t data_end = (*file)->data_offset() + 16;
  for (size_t n = 0; n < data_end; ++n) {
    const absl::Status status = ParseStatus(std::span(bytes).first(n));
    EXPECT_FALSE(status.ok()) << "prefix of " << n << " bytes";
  }
  EXPECT_TRUE(ParseStatus(std::span(bytes).first(data_end)).ok());
}

TEST(GgufFileTest, RejectsHugeCountsWithoutAllocating) {
  // A 2^60-element array in a tiny file.
  GgufBytes array;
  array.Header(3, 0, 1).Str("big").U32(9).U32(4).U64(uint64_t{1} << 60);
  absl::Status status = ParseStatus(array.span());
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(status), HasSubstr("'big'"));

  GgufBytes strings;
  strings.Header(3, 0, 1).Str("s").U32(9).U32(8).U64(~uint64_t{0});
  EXPECT_EQ(ParseStatus(strings.span()).code(), absl::StatusCode::kDataLoss);

  GgufBytes long_string;
  long_string.Header(3, 0, 1).U64(~uint64_t{0} - 3).Raw("k");
  EXPECT_EQ(ParseStatus(long_string.span()).code(), absl::StatusCode::kDataLoss);

  EXPECT_THAT(Message(ParseStatus(GgufBytes().Header(3, uint64_t{1} << 62, 0).span())),
              HasSubstr("tensor count"));
  EXPECT_THAT(Message(ParseStatus(GgufBytes().Header(3, 0, ~uint64_t{0}).span())),
              HasSubstr("metadata count"));
}

TEST(GgufFileTest, RejectsBadKeysAndValueTypes) {
  EXPECT_THAT(Message(ParseStatus(GgufBytes().Header(3, 0, 1).Str("").U32(4).U32(0).span())),
              HasSubstr("empty key"));
  EXPECT_THAT(
      Message(ParseStatus(
          GgufBytes().Header(3, 0, 2).Str("k").U32(0).Raw("x").Str("k").U32(0).Raw("y").span())),
      HasSubstr("duplicate metadata key 'k'"));
  EXPECT_THAT(Message(ParseStatus(GgufBytes().Header(3, 0, 1).Str("k").U32(13).Zeros(8).span())),
              HasSubstr("invalid value type 13"));
  EXPECT_THAT(
      Message(ParseStatus(GgufBytes().Header(3, 0, 1).Str("k").U32(9).U32(9).U64(0).span())),
      HasSubstr("nested arrays are not supported"));
  EXPECT_THAT(Message(ParseStatus(
                  GgufBytes().Header(3, 0, 1).Str("general.alignment").U32(4).U32(48).span())),
              HasSubstr("not a power of two"));
  EXPECT_THAT(Message(ParseStatus(
                  GgufBytes().Header(3, 0, 1).Str("general.alignment").U32(10).U64(32).span())),
              HasSubstr("must be u32"));
}

// One tensor info, padded, plus `data_bytes` of data.
GgufBytes OneTensor(std::string_view name, std::vector<int64_t> dims, uint32_t type,
                    uint64_t offset, size_t data_bytes) {
  GgufBytes b;
  b.Header(3, 1, 0).TensorInfo(name, std::move(dims), type, offset).PadTo(32).Zeros(data_bytes);
  return b;
}

TEST(GgufFileTest, RejectsBadTensorInfos) {
  EXPECT_TRUE(ParseStatus(OneTensor("t", {8}, 0, 0, 32).span()).ok());

  absl::Status unknown = ParseStatus(OneTensor("blk.0.ffn_up.weight", {8}, 99, 0, 32).span());
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(unknown), HasSubstr("unknown tensor type id 99"));
  EXPECT_THAT(Message(unknown), HasSubstr("'blk.0.ffn_up.weight'"));

  EXPECT_THAT(Message(ParseStatus(OneTensor("t", {1, 1, 1, 1, 1}, 0, 0, 32).span())),
              HasSubstr("5 dimensions"));
  EXPECT_THAT(Message(ParseStatus(OneTensor("t", {-1}, 0, 0, 32).span())),
              HasSubstr("dimension 0 is -1"));
  EXPECT_THAT(Message(ParseStatus(OneTensor("t", {1LL << 40, 1LL << 40}, 0, 0, 32).span())),
              HasSubstr("overflows"));
  // 2^62 f32 elements: the element count fits, the byte size does not.
  EXPECT_THAT(Message(ParseStatus(OneTensor("t", {1LL << 31, 1LL << 31}, 0, 0, 32).span())),
              HasSubstr("size in bytes"));
  EXPECT_THAT(Message(ParseStatus(OneTensor("t", {1LL << 30, 1LL << 31}, 0, 0, 32).span())),
              HasSubstr("extends past the end"));
  EXPECT_THAT(Message(ParseStatus(OneTensor("t", {16}, 8, 0, 32).span())),
              HasSubstr("not a multiple of q8_0's block size 32"));
  EXPECT_THAT(Message(ParseStatus(OneTensor("t", {8}, 0, 16, 64).span())),
              HasSubstr("not a multiple of the alignment 32"));
  EXPECT_THAT(Message(ParseStatus(OneTensor("", {8}, 0, 0, 32).span())), HasSubstr("empty name"));
  EXPECT_THAT(Message(ParseStatus(OneTensor(std::string(64, 'n'), {8}, 0, 0, 32).span())),
              HasSubstr("64 bytes long"));
  // A zero dim makes an empty tensor, whatever the other dims.
  EXPECT_TRUE(ParseStatus(OneTensor("t", {0, 1LL << 62, 1LL << 62}, 0, 0, 0).span()).ok());
}

TEST(GgufFileTest, RejectsTensorDataOutsideTheFile) {
  GgufBytes b = OneTensor("blk.0.attn_q.weight", {1024}, 0, 0, 100);
  const absl::Status status = ParseStatus(b.span());
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(status),
              HasSubstr(fmt::format("tensor 'blk.0.attn_q.weight' data [offset 96, 4096 bytes] "
                                    "extends past the end of the file ({} bytes)",
                                    b.size())));
  // Offsets near 2^64 must not wrap around.
  EXPECT_FALSE(ParseStatus(OneTensor("t", {8}, 0, ~uint64_t{0} - 31, 32).span()).ok());
}

TEST(GgufFileTest, RejectsDuplicateAndOverlappingTensors) {
  GgufBytes dup;
  dup.Header(3, 2, 0).TensorInfo("t", {8}, 0, 0).TensorInfo("t", {8}, 0, 32).PadTo(32).Zeros(64);
  EXPECT_THAT(Message(ParseStatus(dup.span())), HasSubstr("duplicate tensor name 't'"));

  GgufBytes overlap;
  overlap.Header(3, 2, 0)
      .TensorInfo("a", {16}, 0, 0)
      .TensorInfo("b", {8}, 0, 32)
      .PadTo(32)
      .Zeros(64);
  EXPECT_THAT(Message(ParseStatus(overlap.span())), HasSubstr("overlaps"));

  // Out of order but disjoint is fine.
  GgufBytes reversed;
  reversed.Header(3, 2, 0)
      .TensorInfo("a", {8}, 0, 32)
      .TensorInfo("b", {8}, 0, 0)
      .PadTo(32)
      .Zeros(64);
  EXPECT_TRUE(ParseStatus(reversed.span()).ok());
}

TEST(GgufFileTest, ReadsTheFileAWriterCopiedValuesInto) {
  GgufWriter source;
  source.SetStringArray("tokenizer.ggml.tokens", std::vector<std::string>{"a", "b"});
  source.SetArray<float>("tokenizer.ggml.scores", {0.1f, 0.2f});
  source.SetString("tokenizer.ggml.model", "gpt2");
  const std::vector<std::byte> source_bytes = MustWrite(source);
  auto file = GgufFile::FromBuffer(source_bytes);
  ASSERT_TRUE(file.ok());

  GgufWriter copy;
  for (const GgufFile::KeyValue& kv : (*file)->metadata()) copy.CopyValue(kv);
  const std::vector<std::byte> copy_bytes = MustWrite(copy);
  EXPECT_EQ(copy_bytes, source_bytes);
}

}  // namespace
}  // namespace triplane::engine
