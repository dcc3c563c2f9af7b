// The `triplane` binary: one executable for all three planes. Parses the command line
// (flags > TRIPLANE_* environment > config file > defaults), sets up logging, and runs
// the chosen subcommand.
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "cli/commands.h"
#include "common/build_info.h"
#include "common/config.h"
#include "common/logging.h"
#include "fmt/format.h"

namespace triplane::cli {
namespace {

// One paragraph, wrapped for an 80-100 column terminal (CLI11 prints it verbatim).
constexpr char kDescription[] =
    "Triplane serves large language models as three planes. The data plane (triplane engine)\n"
    "loads a model and turns requests into tokens; the business plane (triplane gateway)\n"
    "faces users with an OpenAI-compatible API, API keys, quotas and routing; the management\n"
    "plane (triplane control) runs the fleet: models, deployments, rollouts, autoscaling,\n"
    "usage and audit. 'triplane serve' runs them all on one machine. Every option can also be\n"
    "set with a TRIPLANE_* environment variable or in the --config file; flags win over the\n"
    "environment, which wins over the file.";

// Exit code for a bad config file or logging setup (the usage error convention).
constexpr int kExitUsage = 2;

std::string VersionLine() {
  const common::BuildInfo& info = common::GetBuildInfo();
  return fmt::format("triplane {} (commit {})", info.version, info.git_commit);
}

// CLI11's default failure message takes two lines; ours is one.
std::string OneLineFailure(const CLI::App* /*app*/, const CLI::Error& error) {
  return fmt::format("triplane: {} (see 'triplane --help')\n", error.what());
}

int Main(int argc, char** argv) {
  CLI::App app(kDescription, "triplane");
  app.require_subcommand(1);
  app.fallthrough();  // subcommands inherit it: global options may follow the subcommand
  app.failure_message(OneLineFailure);
  app.set_version_flag("--version", VersionLine(), "Print the version and exit");

  common::LogOptions log_options;
  std::string log_format(common::LogFormatName(log_options.format));
  std::string config_file;
  app.add_option("--log-level", log_options.level, "Least severe level to log")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_option("--log-format", log_format, "Log line format: text (for people) or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--log-file", log_options.file, "Append logs to this file instead of stderr")
      ->type_name("FILE");
  app.add_option("--config", config_file,
                 "TOML file of option defaults: top-level keys for these global options, "
                 "[serve], [engine], ... sections for a subcommand's (env TRIPLANE_CONFIG)")
      ->type_name("FILE");

  std::vector<Command> commands = {
      AddServeCommand(app),   AddEngineCommand(app),   AddGatewayCommand(app),
      AddControlCommand(app), AddGenerateCommand(app), AddVersionCommand(app),
      AddGgufCommand(app),    AddAutoscaleCommand(app),
  };
  for (Command& command : AddAdminCommands(app)) commands.push_back(std::move(command));

  common::BindEnvironment(app);
  if (const std::optional<std::string> file = common::FindConfigFile(argc, argv)) {
    if (const absl::Status status = common::ApplyConfigFile(app, *file); !status.ok()) {
      std::fprintf(stderr, "triplane: %s\n", std::string(status.message()).c_str());
      return kExitUsage;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::RequiredError& error) {
    // CLI11 reports a mistyped subcommand as "A subcommand is required"; name it.
    if (app.get_subcommands().empty()) {
      for (const std::string& arg : app.remaining()) {
        if (arg.empty() || arg.front() == '-') continue;
        std::fprintf(stderr, "triplane: unknown subcommand '%s' (see 'triplane --help')\n",
                     arg.c_str());
        return error.get_exit_code();
      }
    }
    return app.exit(error);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }

  absl::StatusOr<common::LogFormat> format = common::ParseLogFormat(log_format);
  if (!format.ok()) {
    std::fprintf(stderr, "triplane: %s\n", std::string(format.status().message()).c_str());
    return kExitUsage;
  }
  log_options.format = *format;
  if (const absl::Status status = common::InitLogging(log_options); !status.ok()) {
    std::fprintf(stderr, "triplane: %s\n", std::string(status.message()).c_str());
    return kExitUsage;
  }

  for (const Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  // require_subcommand(1) makes this unreachable; say so rather than exit silently.
  std::fputs("triplane: no subcommand given (see 'triplane --help')\n", stderr);
  return kExitUsage;
}

}  // namespace
}  // namespace triplane::cli

int main(int argc, char** argv) {
  // Nothing may escape main: a stray exception becomes one line and exit code 1.
  try {
    return triplane::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "triplane: fatal: %s\n", e.what());
  } catch (...) {
    std::fputs("triplane: fatal: unknown exception\n", stderr);
  }
  return 1;
}
