// `triplane gguf random`: a random-weight model in a real GGUF file with a real
// tokenizer copied from another GGUF (tests, benchmarks and the demo model use it).

#include <cstdio>
#include <map>

#include "cli/gguf_command.h"
#include "engine/model/architecture.h"
#include "engine/model/random_model.h"

namespace triplane::cli {

Command AddGgufRandomCommand(CLI::App& gguf) {
  struct Flags {
    engine::RandomModelOptions model;
    std::string type = "f32";
    std::string out;
  };
  auto flags = std::make_shared<Flags>();
  static const std::map<std::string, engine::GgmlType> kTypes = {
      {"f32", engine::GgmlType::kF32},   {"f16", engine::GgmlType::kF16},
      {"bf16", engine::GgmlType::kBF16}, {"q8_0", engine::GgmlType::kQ8_0},
      {"q4_0", engine::GgmlType::kQ4_0}, {"q4_k", engine::GgmlType::kQ4_K},
      {"q6_k", engine::GgmlType::kQ6_K},
  };
  std::vector<std::string> arches;
  for (const engine::ArchitectureSpec* spec : engine::Architectures()) arches.emplace_back(spec->name);
  std::vector<std::string> types;
  for (const auto& [name, type] : kTypes) types.push_back(name);

  CLI::App* app = gguf.add_subcommand(
      "random", "Write a random-weight model with a real tokenizer (copied from another GGUF, or built in)");
  app->add_option("--arch", flags->model.architecture, "Architecture")
      ->check(CLI::IsMember(arches))
      ->capture_default_str();
  app->add_option("--size", flags->model.size, "Shape: " + engine::RandomModelSizes())
      ->check(CLI::IsMember({"tiny", "15m", "110m", "1b"}))
      ->capture_default_str();
  app->add_option("--type", flags->type, "Weight type of the matrices")
      ->check(CLI::IsMember(types))
      ->capture_default_str();
  app->add_option("--vocab-from", flags->model.vocab_from,
                  "GGUF file whose tokenizer is copied (default: a built-in byte-level "
                  "vocabulary with ChatML tokens)")
      ->check(CLI::ExistingFile);
  app->add_option("--seed", flags->model.seed, "Seed of the weights")->capture_default_str();
  app->add_option("--out", flags->out, "Output GGUF file")->required();
  return {app, [flags] {
            flags->model.type = kTypes.at(flags->type);
            absl::Status status = engine::WriteRandomModel(flags->model, flags->out);
            if (!status.ok()) {
              std::fprintf(stderr, "triplane gguf random: %s\n", std::string(status.message()).c_str());
              return 1;
            }
            return 0;
          }};
}

}  // namespace triplane::cli
