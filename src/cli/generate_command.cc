// `triplane generate`: announced here, delivered by issue #3 (Data plane I).
#include "cli/commands.h"
#include "cli/planned_command.h"

namespace triplane::cli {

Command AddGenerateCommand(CLI::App& root) {
  return AddPlannedCommand(
      root, {.name = "generate",
             .description = "Generate text from a model file on this machine, without a server",
             .issue = 3,
             .issue_title = "Data plane I"});
}

}  // namespace triplane::cli
