// `triplane control`: announced here, delivered by issue #5 (Management plane I).
#include "cli/commands.h"
#include "cli/planned_command.h"

namespace triplane::cli {

Command AddControlCommand(CLI::App& root) {
  return AddPlannedCommand(
      root, {.name = "control",
             .description =
                 "Management plane: models, deployments, rollouts, autoscaling, usage and audit",
             .issue = 5,
             .issue_title = "Management plane I"});
}

}  // namespace triplane::cli
