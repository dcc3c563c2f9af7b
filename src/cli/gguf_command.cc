// `triplane gguf`: the parent of the GGUF tools, and `triplane gguf inspect`.
#include "cli/gguf_command.h"

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "common/json.h"
#include "common/strings.h"
#include "engine/gguf/ggml_type.h"
#include "engine/gguf/gguf_file.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "nlohmann/json.hpp"

namespace triplane::cli {
namespace {

using engine::GgufFile;
using engine::GgufScalar;
using engine::GgufTensorInfo;
using engine::GgufValueType;

// Text output shows this many elements of an array and this many bytes of a string.
constexpr uint64_t kShownElements = 8;
constexpr size_t kShownStringBytes = 120;

// `text` with quotes, backslashes, control and non-ASCII bytes escaped, cut at
// `max_bytes` (the file's strings need not be UTF-8; the terminal gets ASCII).
std::string Escaped(std::string_view text, size_t max_bytes) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max_bytes; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  return out;
}

std::string Quoted(std::string_view text, size_t max_bytes) {
  std::string out = fmt::format("\"{}\"", Escaped(text, max_bytes));
  if (text.size() > max_bytes) out += fmt::format("... ({} bytes)", text.size());
  return out;
}

std::string ScalarText(const GgufScalar& value) {
  return std::visit(
      [](auto v) -> std::string {
        using T = decltype(v);
        if constexpr (std::is_same_v<T, std::string_view>) {
          return Quoted(v, kShownStringBytes);
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>) {
          return fmt::format("{}", static_cast<int>(v));
        } else {
          return fmt::format("{}", v);
        }
      },
      value);
}

nlohmann::json ScalarJson(const GgufScalar& value) {
  return std::visit(
      [](auto v) -> nlohmann::json {
        if constexpr (std::is_same_v<decltype(v), std::string_view>) {
          return std::string(v);
        } else {
          return v;
        }
      },
      value);
}

std::string TypeText(const GgufFile::KeyValue& kv) {
  if (kv.type != GgufValueType::kArray) return std::string(engine::GgufValueTypeName(kv.type));
  return fmt::format("arr[{}]", engine::GgufValueTypeName(kv.array_type));
}

std::string ValueText(const GgufFile::KeyValue& kv) {
  if (kv.type != GgufValueType::kArray) return ScalarText(kv.Scalar());
  std::vector<std::string> shown;
  kv.ForEachElement([&](uint64_t i, const GgufScalar& element) {
    if (i >= kShownElements) return false;
    shown.push_back(ScalarText(element));
    return true;
  });
  return fmt::format("{} items: [{}{}]", kv.array_size, fmt::join(shown, ", "),
                     kv.array_size > kShownElements ? ", ..." : "");
}

std::string TypeName(engine::GgmlType type) {
  const auto traits = engine::GetGgmlTypeTraits(static_cast<uint32_t>(type));
  return traits ? std::string(traits->name) : fmt::format("type{}", static_cast<uint32_t>(type));
}

std::string DimsText(const GgufTensorInfo& t) {
  if (t.dims.empty()) return "scalar";
  return fmt::format("{}", fmt::join(t.dims, " x "));
}

std::string HumanBytes(uint64_t bytes) {
  constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, kUnits[unit]);
}

struct TypeTotals {
  uint64_t tensors = 0;
  uint64_t bytes = 0;
  uint64_t elements = 0;
};

// Parameters (elements over every tensor) and totals per tensor type, by type name.
std::map<std::string, TypeTotals> TotalsByType(const GgufFile& file, uint64_t* parameters) {
  std::map<std::string, TypeTotals> totals;
  *parameters = 0;
  for (const GgufTensorInfo& t : file.tensors()) {
    TypeTotals& total = totals[TypeName(t.type)];
    ++total.tensors;
    total.bytes += t.bytes;
    total.elements += static_cast<uint64_t>(t.elements);
    *parameters += static_cast<uint64_t>(t.elements);
  }
  return totals;
}

std::string InspectText(const std::string& path, const GgufFile& file) {
  std::string out = fmt::format(
      "file:       {}\n"
      "version:    {}\n"
      "alignment:  {}\n"
      "data:       offset {}, {} bytes\n"
      "size:       {} ({} bytes)\n",
      path, file.version(), file.alignment(), file.data_offset(),
      file.file_size() - file.data_offset(), HumanBytes(file.file_size()), file.file_size());

  size_t key_width = 3;
  for (const GgufFile::KeyValue& kv : file.metadata())
    key_width = std::max(key_width, kv.key.size());
  key_width = std::min<size_t>(key_width, 48);
  out += fmt::format("\nmetadata ({} entries):\n", file.metadata().size());
  for (const GgufFile::KeyValue& kv : file.metadata()) {
    out += fmt::format("  {:<{}}  {:<9}  {}\n", Escaped(kv.key, 200), key_width, TypeText(kv),
                       ValueText(kv));
  }

  size_t name_width = 4;
  for (const GgufTensorInfo& t : file.tensors()) name_width = std::max(name_width, t.name.size());
  out += fmt::format("\ntensors ({}):\n", file.tensors().size());
  if (!file.tensors().empty()) {
    out += fmt::format("  {:<{}}  {:<6}  {:<24}  {:>14}  {:>14}\n", "name", name_width, "type",
                       "dims", "bytes", "offset");
  }
  for (const GgufTensorInfo& t : file.tensors()) {
    out += fmt::format("  {:<{}}  {:<6}  {:<24}  {:>14}  {:>14}\n", Escaped(t.name, 200),
                       name_width, TypeName(t.type), DimsText(t), t.bytes, t.offset);
  }

  uint64_t parameters = 0;
  const std::map<std::string, TypeTotals> totals = TotalsByType(file, &parameters);
  out += fmt::format("\nparameters: {}\n", parameters);
  if (!totals.empty()) out += "bytes per type:\n";
  for (const auto& [type, total] : totals) {
    out += fmt::format("  {:<6}  {:>6} tensors  {:>16} bytes  ({})\n", type, total.tensors,
                       total.bytes, HumanBytes(total.bytes));
  }
  return out;
}

std::string InspectJson(const std::string& path, const GgufFile& file) {
  nlohmann::json metadata = nlohmann::json::array();
  for (const GgufFile::KeyValue& kv : file.metadata()) {
    nlohmann::json entry = {{"key", std::string(kv.key)},
                            {"type", std::string(engine::GgufValueTypeName(kv.type))}};
    if (kv.type == GgufValueType::kArray) {
      entry["array_type"] = std::string(engine::GgufValueTypeName(kv.array_type));
      entry["length"] = kv.array_size;
      nlohmann::json values = nlohmann::json::array();
      kv.ForEachElement([&](uint64_t, const GgufScalar& element) {
        values.push_back(ScalarJson(element));
        return true;
      });
      entry["value"] = std::move(values);
    } else {
      entry["value"] = ScalarJson(kv.Scalar());
    }
    metadata.push_back(std::move(entry));
  }
  nlohmann::json tensors = nlohmann::json::array();
  for (const GgufTensorInfo& t : file.tensors()) {
    tensors.push_back({{"name", t.name},
                       {"type", TypeName(t.type)},
                       {"type_id", static_cast<uint32_t>(t.type)},
                       {"dims", t.dims},
                       {"elements", t.elements},
                       {"bytes", t.bytes},
                       {"offset", t.offset}});
  }
  uint64_t parameters = 0;
  nlohmann::json types = nlohmann::json::object();
  for (const auto& [type, total] : TotalsByType(file, &parameters)) {
    types[type] = {
        {"tensors", total.tensors}, {"bytes", total.bytes}, {"elements", total.elements}};
  }
  const nlohmann::json json = {
      {"file", path},
      {"version", file.version()},
      {"alignment", file.alignment()},
      {"data_offset", file.data_offset()},
      {"file_size", file.file_size()},
      {"metadata", std::move(metadata)},
      {"tensors", std::move(tensors)},
      {"parameters", parameters},
      {"types", std::move(types)},
  };
  return common::DumpJson(json, 2) + "\n";
}

struct InspectOptions {
  std::string file;
  bool json = false;
};

int RunInspect(const InspectOptions& options) {
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(options.file);
  if (!file.ok()) {
    std::fprintf(stderr, "triplane gguf inspect: %s\n",
                 std::string(common::ToStd(file.status().message())).c_str());
    return 1;
  }
  const std::string text =
      options.json ? InspectJson(options.file, **file) : InspectText(options.file, **file);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

Command AddGgufInspectCommand(CLI::App& gguf) {
  CLI::App* app = gguf.add_subcommand(
      "inspect", "Print a GGUF file's version, metadata, tensors and parameter count");
  auto options = std::make_shared<InspectOptions>();
  app->add_option("file", options->file, "The GGUF file")->required()->type_name("FILE");
  app->add_flag("--json", options->json, "Print one JSON object with every metadata value in full");
  return {app, [options] { return RunInspect(*options); }};
}

Command AddGgufCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand("gguf", "Inspect and create GGUF model files");
  app->require_subcommand(1);
  // Tools under `triplane gguf` (see gguf_command.h to add one).
  const std::vector<Command> tools = {
      AddGgufInspectCommand(*app),
      AddGgufRandomCommand(*app),
  };
  return {app, [tools] {
            for (const Command& tool : tools) {
              if (tool.app->parsed()) return tool.run();
            }
            std::fputs("triplane gguf: no tool given (see 'triplane gguf --help')\n", stderr);
            return 2;
          }};
}

}  // namespace triplane::cli
