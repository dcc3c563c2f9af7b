// `triplane version [--json]`: what this binary is and how it was built.
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "common/build_info.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace triplane::cli {
namespace {

std::string VersionText(const common::BuildInfo& info) {
  return fmt::format(
      "triplane {}\n"
      "commit:     {}\n"
      "build type: {}\n"
      "compiler:   {}\n"
      "cuda:       {}\n"
      "sanitizers: {}\n",
      info.version, info.git_commit, info.build_type, info.compiler, info.cuda ? "toolkit built in (no GPU kernels yet)" : "off",
      info.sanitizers.empty() ? "none" : info.sanitizers);
}

std::string VersionJson(const common::BuildInfo& info) {
  const nlohmann::json json = {
      {"version", std::string(info.version)},
      {"git_commit", std::string(info.git_commit)},
      {"build_type", std::string(info.build_type)},
      {"compiler", std::string(info.compiler)},
      {"cuda", info.cuda},
      {"sanitizers", std::string(info.sanitizers)},
  };
  return json.dump() + "\n";
}

}  // namespace

Command AddVersionCommand(CLI::App& root) {
  CLI::App* app = root.add_subcommand("version", "Print the version and how this binary was built");
  auto json = std::make_shared<bool>(false);
  app->add_flag("--json", *json, "Print one JSON object instead of text");
  return {app, [json] {
            const common::BuildInfo& info = common::GetBuildInfo();
            const std::string text = *json ? VersionJson(info) : VersionText(info);
            std::fputs(text.c_str(), stdout);
            return std::fflush(stdout) == 0 ? 0 : 1;
          }};
}

}  // namespace triplane::cli
