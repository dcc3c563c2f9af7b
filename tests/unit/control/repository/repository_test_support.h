#pragma once

// Real tiny GGUF files and a metadata reader built on engine/gguf, for the repository
// and admin API tests (the control plane itself gets its reader injected).

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/strings.h"
#include "control/store/store_types.h"
#include "engine/gguf/ggml_type.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "gtest/gtest.h"

namespace triplane::control::testing_support {

// Writes a llama-shaped GGUF (context 2048, a chat template, one F32 tensor of
// `elements` values) to `path`; `name` makes the bytes differ between files.
inline void WriteTinyGguf(const std::string& path, const std::string& name, int elements = 64) {
  engine::GgufWriter writer;
  writer.SetString("general.architecture", "llama");
  writer.SetString("general.name", name);
  writer.SetUint32("llama.context_length", 2048);
  writer.SetUint32("llama.block_count", 1);
  writer.SetString("tokenizer.chat_template", "{{ messages }}");
  std::vector<float> weights(static_cast<size_t>(elements), 0.5f);
  const auto bytes = std::as_bytes(std::span<const float>(weights));
  ASSERT_TRUE(
      writer.AddTensor("output_norm.weight", {elements}, engine::GgmlType::kF32, bytes).ok());
  ASSERT_TRUE(writer.WriteTo(path).ok());
}

// What `triplane` passes as RepositoryOptions::read_gguf, reduced to what tests check.
inline absl::StatusOr<GgufSummary> ReadTinyGguf(const std::string& path) {
  absl::StatusOr<std::unique_ptr<engine::GgufFile>> file = engine::GgufFile::Open(path);
  if (!file.ok()) {
    return absl::InvalidArgumentError(std::string("not a GGUF file: ") +
                                      std::string(common::ToStd(file.status().message())));
  }
  GgufSummary summary;
  summary.architecture = std::string((*file)->GetString("general.architecture").value_or(""));
  summary.context_length = (*file)->GetInt(summary.architecture + ".context_length").value_or(0);
  summary.has_chat_template = (*file)->FindKey("tokenizer.chat_template") != nullptr;
  std::set<std::string> types;
  for (const engine::GgufTensorInfo& t : (*file)->tensors()) {
    summary.parameter_count += t.elements;
    types.insert(
        common::AsciiToLower(engine::GetGgmlTypeTraits(static_cast<uint32_t>(t.type))->name));
  }
  summary.tensor_types.assign(types.begin(), types.end());
  summary.file_type = summary.tensor_types.empty() ? "" : summary.tensor_types.front();
  summary.extra = {{"name", std::string((*file)->GetString("general.name").value_or(""))}};
  return summary;
}

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The files directly in `dir` plus those in dir/.incoming (what a failed add must not
// leave behind), as names relative to `dir`.
inline std::vector<std::string> FilesIn(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file()) names.push_back(std::filesystem::relative(e.path(), dir).string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A fresh temporary directory, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "triplane-repo-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace triplane::control::testing_support
