#pragma once

// Configuration for any CLI11 command line, from four sources. Precedence, highest first:
//
//   1. a command-line flag            --kv-memory 8GiB
//   2. a TRIPLANE_* environment var   TRIPLANE_KV_MEMORY=8GiB
//   3. the config file                [engine]  kv-memory = "8GiB"
//   4. the built-in default
//
// CLI11 on its own reads a config file before the environment and lets the file win;
// here the file's values become the options' defaults instead, so both the environment
// and the command line override them. Usage, before CLI11_PARSE / app.parse():
//
//   BindEnvironment(app);
//   if (auto file = FindConfigFile(argc, argv)) TP_RETURN_IF_ERROR(ApplyConfigFile(app, *file));
//   app.parse(argc, argv);

#include <optional>
#include <string>
#include <string_view>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace triplane::common {

// Prefix of every environment variable Triplane reads.
inline constexpr std::string_view kEnvPrefix = "TRIPLANE_";

// The environment variable naming the config file when no --config flag is given.
inline constexpr char kConfigEnvVar[] = "TRIPLANE_CONFIG";

// The environment variable for a long option name: "kv-memory" -> "TRIPLANE_KV_MEMORY".
std::string EnvVarName(std::string_view long_option_name);

// Gives every long option of `app` and of all its subcommands (and option groups) an
// environment variable named by EnvVarName() from its first long name, unless the option
// already has one. Skips --help, --help-all, --version and --config. Options of
// different subcommands with the same name share a variable. Call after all options
// are added. Not thread-safe (mutates `app`).
void BindEnvironment(CLI::App& app);

// Reads the TOML-style file at `path` (CLI11's ConfigTOML syntax: `key = value`,
// `# comments`, quoted strings, [a, b] arrays): top-level keys set options of the root
// app, keys under [serve], [engine], ... (or dotted, `engine.port = 1`) set options of
// that subcommand. A key is an option's long name; `_` may stand for `-`. Each value
// becomes the option's default and is converted and validated at once (the bound
// variable is set now), so a flag or environment variable given later still wins and a
// required option counts as given.
// Errors: the file cannot be read, or has an unknown section or key, or a value the
// option rejects -> InvalidArgument "config file F: [section] key: reason". On error
// the options set before the bad key keep their new defaults.
[[nodiscard]] absl::Status ApplyConfigFile(CLI::App& app, const std::string& path);

// The config file named on the command line (`--config FILE` or `--config=FILE`, before
// any `--`), else by the TRIPLANE_CONFIG environment variable (when not empty), else
// nullopt. Does not check that the file exists. `argv[0]` is the program name.
std::optional<std::string> FindConfigFile(int argc, const char* const* argv);

}  // namespace triplane::common
