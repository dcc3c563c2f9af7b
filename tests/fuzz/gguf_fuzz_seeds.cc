// Writes the seed corpus of gguf_fuzz: small valid files made with GgufWriter and a few
// broken ones, named without a .gguf suffix (.gitignore ignores *.gguf). Usage:
// gguf_fuzz_seeds DIR (scripts/fuzz does not run it; the output is
// committed in tests/fuzz/corpus/gguf).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "../unit/engine/gguf/gguf_test_util.h"
#include "engine/gguf/gguf_writer.h"

namespace triplane::engine {
namespace {

using testing::GgufBytes;

bool Save(const std::string& dir, const std::string& name, std::span<const std::byte> bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return out.good();
}

bool Save(const std::string& dir, const std::string& name, const GgufWriter& writer) {
  absl::StatusOr<std::vector<std::byte>> bytes = writer.WriteToBuffer();
  return bytes.ok() && Save(dir, name, *bytes);
}

std::vector<std::byte> Pattern(size_t n) {
  std::vector<std::byte> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>(i * 31 + 7);
  return out;
}

bool WriteSeeds(const std::string& dir) {
  bool ok = true;
  ok &= Save(dir, "empty", GgufWriter());

  GgufWriter metadata;
  metadata.SetUint8("u8", 1);
  metadata.SetInt8("i8", -1);
  metadata.SetUint16("u16", 2);
  metadata.SetInt16("i16", -2);
  metadata.SetUint32("u32", 3);
  metadata.SetInt32("i32", -3);
  metadata.SetUint64("u64", 4);
  metadata.SetInt64("i64", -4);
  metadata.SetFloat32("f32", 0.5f);
  metadata.SetFloat64("f64", 0.25);
  metadata.SetBool("bool", true);
  metadata.SetString("str", "hello");
  metadata.SetArray<uint8_t>("arr.u8", {1, 2});
  metadata.SetArray<int16_t>("arr.i16", {-1, 1});
  metadata.SetArray<uint32_t>("arr.u32", {7, 4000000000u});
  metadata.SetArray<int32_t>("arr.i32", {1, -1});
  metadata.SetArray<uint64_t>("arr.u64", {9});
  metadata.SetArray<float>("arr.f32", {0.1f, -0.2f});
  metadata.SetArray<double>("arr.f64", {1e300});
  const bool flags[] = {true, false};
  metadata.SetArray(std::string_view("arr.bool"), std::span<const bool>(flags));
  metadata.SetStringArray("arr.str", std::vector<std::string>{"a", "", "\xe4\xb8\xad"});
  ok &= Save(dir, "metadata", metadata);

  GgufWriter vocab;
  vocab.SetString("general.architecture", "llama");
  vocab.SetString("tokenizer.ggml.model", "gpt2");
  vocab.SetStringArray("tokenizer.ggml.tokens", std::vector<std::string>{"<s>", "</s>", "a", "b"});
  vocab.SetArray<float>("tokenizer.ggml.scores", {0, 0, -1, -2});
  vocab.SetArray<int32_t>("tokenizer.ggml.token_type", {3, 3, 1, 1});
  vocab.SetStringArray("tokenizer.ggml.merges", std::vector<std::string>{"a b"});
  vocab.SetUint32("tokenizer.ggml.bos_token_id", 0);
  ok &= Save(dir, "vocab", vocab);

  GgufWriter tensors;
  tensors.SetString("general.architecture", "llama");
  ok &= tensors.AddTensor("token_embd.weight", {8, 4}, GgmlType::kF32, Pattern(128)).ok();
  ok &= tensors.AddTensor("output_norm.weight", {8}, GgmlType::kF16, Pattern(16)).ok();
  ok &= tensors.AddTensor("blk.0.attn_q.weight", {32, 2}, GgmlType::kQ8_0, Pattern(68)).ok();
  ok &= tensors.AddTensor("blk.0.ffn_up.weight", {256}, GgmlType::kQ4_K, Pattern(144)).ok();
  ok &= tensors.AddTensor("blk.0.ffn_down.weight", {256}, GgmlType::kQ6_K, Pattern(210)).ok();
  ok &= tensors.AddTensor("empty", {0, 3}, GgmlType::kBF16, {}).ok();
  ok &= tensors.AddTensor("scalar", {}, GgmlType::kI32, Pattern(4)).ok();
  ok &= Save(dir, "tensors", tensors);

  GgufWriter aligned;
  aligned.SetUint32("general.alignment", 64);
  ok &= aligned.AddTensor("a", {3}, GgmlType::kF32, Pattern(12)).ok();
  ok &= aligned.AddTensor("b", {2, 2}, GgmlType::kI16, Pattern(8)).ok();
  ok &= Save(dir, "aligned64", aligned);

  // Broken files.
  absl::StatusOr<std::vector<std::byte>> full = tensors.WriteToBuffer();
  ok &= full.ok() && Save(dir, "truncated", std::span(*full).first(full->size() / 2));
  ok &= Save(dir, "version1", GgufBytes().Header(1, 0, 0).span());
  ok &= Save(dir, "nested-array",
             GgufBytes().Header(3, 0, 1).Str("k").U32(9).U32(9).U64(1).U32(4).U64(0).span());
  ok &= Save(dir, "huge-array",
             GgufBytes().Header(3, 0, 1).Str("k").U32(9).U32(6).U64(uint64_t{1} << 60).span());
  ok &= Save(dir, "bad-tensor-type",
             GgufBytes().Header(3, 1, 0).TensorInfo("t", {8}, 99, 0).PadTo(32).Zeros(32).span());
  ok &= Save(dir, "overlap",
             GgufBytes()
                 .Header(3, 2, 0)
                 .TensorInfo("a", {16}, 0, 0)
                 .TensorInfo("b", {8}, 0, 32)
                 .PadTo(32)
                 .Zeros(64)
                 .span());
  ok &= Save(dir, "past-end",
             GgufBytes().Header(3, 1, 0).TensorInfo("t", {1024}, 0, 0).PadTo(32).Zeros(8).span());
  return ok;
}

}  // namespace
}  // namespace triplane::engine

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fputs("usage: gguf_fuzz_seeds DIR\n", stderr);
    return 2;
  }
  if (!triplane::engine::WriteSeeds(argv[1])) {
    std::fputs("gguf_fuzz_seeds: failed to write the seeds\n", stderr);
    return 1;
  }
  return 0;
}
