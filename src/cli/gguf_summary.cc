#include "cli/gguf_summary.h"

#include <cctype>
#include <map>
#include <optional>

#include "engine/gguf/ggml_type.h"
#include "engine/gguf/gguf_file.h"
#include "fmt/format.h"

namespace triplane::cli {
namespace {

// llama.cpp's LLAMA_FTYPE names for `general.file_type`, as people know them.
std::optional<std::string> FileTypeName(int64_t id) {
  static const std::map<int64_t, std::string> kNames = {
      {0, "F32"},     {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},
      {8, "Q5_0"},    {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"},
      {13, "Q3_K_L"}, {14, "Q4_K_S"}, {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},
      {18, "Q6_K"},   {32, "BF16"},
  };
  const auto it = kNames.find(id);
  return it == kNames.end() ? std::nullopt : std::optional(it->second);
}

// "Q4_K", "F32": ggml's type name in capitals, as model cards write it.
std::string TypeLabel(engine::GgmlType type) {
  const auto traits = engine::GetGgmlTypeTraits(static_cast<uint32_t>(type));
  std::string name =
      traits ? std::string(traits->name) : fmt::format("type{}", static_cast<uint32_t>(type));
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

}  // namespace

absl::StatusOr<control::GgufSummary> ReadGgufSummary(const std::string& path) {
  absl::StatusOr<std::unique_ptr<engine::GgufFile>> opened = engine::GgufFile::Open(path);
  if (!opened.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("{} is not a usable GGUF file: {}", path, std::string(opened.status().message())));
  }
  const engine::GgufFile& file = **opened;
  control::GgufSummary summary;
  summary.architecture = std::string(file.GetString("general.architecture").value_or(""));
  const std::string arch = summary.architecture + ".";

  // Parameters over every tensor; the most common type by bytes names an unlabelled file.
  std::map<std::string, uint64_t> bytes_by_type;
  for (const engine::GgufTensorInfo& tensor : file.tensors()) {
    summary.parameter_count += tensor.elements;
    bytes_by_type[TypeLabel(tensor.type)] += tensor.bytes;
  }
  std::string dominant;
  uint64_t dominant_bytes = 0;
  for (const auto& [type, bytes] : bytes_by_type) {
    summary.tensor_types.push_back(type);
    if (bytes > dominant_bytes) dominant = type, dominant_bytes = bytes;
  }
  const std::optional<int64_t> file_type = file.GetInt("general.file_type");
  const std::optional<std::string> named = file_type ? FileTypeName(*file_type) : std::nullopt;
  summary.file_type = named.value_or(dominant);
  summary.context_length = file.GetInt(arch + "context_length").value_or(0);
  summary.has_chat_template = file.GetString("tokenizer.chat_template").has_value();

  nlohmann::json& extra = summary.extra;
  if (auto name = file.GetString("general.name")) extra["name"] = std::string(*name);
  if (const engine::GgufFile::KeyValue* tokens = file.FindKey("tokenizer.ggml.tokens")) {
    extra["vocab_size"] = tokens->array_size;
  }
  for (const char* key : {"block_count", "embedding_length", "feed_forward_length"}) {
    if (auto value = file.GetInt(arch + key)) extra[key] = *value;
  }
  const std::optional<int64_t> heads = file.GetInt(arch + "attention.head_count");
  if (heads) extra["head_count"] = *heads;
  extra["head_count_kv"] = file.GetInt(arch + "attention.head_count_kv").value_or(heads.value_or(0));
  if (auto key_length = file.GetInt(arch + "attention.key_length")) {
    extra["head_dim"] = *key_length;
  } else if (auto width = file.GetInt(arch + "embedding_length"); width && heads && *heads > 0) {
    extra["head_dim"] = *width / *heads;
  }
  if (file_type) extra["file_type_id"] = *file_type;
  return summary;
}

}  // namespace triplane::cli
