// `triplane engine`: announced here, delivered by issue #4 (Data plane II).
#include "cli/commands.h"
#include "cli/planned_command.h"

namespace triplane::cli {

Command AddEngineCommand(CLI::App& root) {
  return AddPlannedCommand(
      root, {.name = "engine",
             .description = "Data plane: load one model and serve it over the engine API",
             .issue = 4,
             .issue_title = "Data plane II"});
}

}  // namespace triplane::cli
