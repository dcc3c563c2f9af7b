#pragma once

// Subcommands of the `triplane` binary. Each Add*Command registers its subcommand, its
// flags (bound to the component's options struct) and returns how to run it; main()
// parses the command line, sets up logging, then runs the chosen command.

#include <functional>
#include <vector>

#include "CLI/CLI.hpp"

namespace triplane::cli {

struct Command {
  CLI::App* app = nullptr;   // the registered subcommand
  std::function<int()> run;  // runs it after parsing; returns the process exit code
};

Command AddServeCommand(CLI::App& root);
Command AddEngineCommand(CLI::App& root);
Command AddGatewayCommand(CLI::App& root);
Command AddControlCommand(CLI::App& root);
Command AddGenerateCommand(CLI::App& root);
Command AddVersionCommand(CLI::App& root);
Command AddGgufCommand(CLI::App& root);  // `gguf` with its tools (cli/gguf_command.h)
// models, deploy, scale, undeploy, ps, config, audit, keys, teams (cli/admin_commands.cc)
std::vector<Command> AddAdminCommands(CLI::App& root);
// `autoscale NAME --min --max … | --off` (cli/autoscale_command.cc)
Command AddAutoscaleCommand(CLI::App& root);

}  // namespace triplane::cli
