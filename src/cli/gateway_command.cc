// `triplane gateway`: announced here, delivered by issue #6 (Business plane).
#include "cli/commands.h"
#include "cli/planned_command.h"

namespace triplane::cli {

Command AddGatewayCommand(CLI::App& root) {
  return AddPlannedCommand(
      root, {.name = "gateway",
             .description =
                 "Business plane: OpenAI-compatible API with keys, quotas and routing to engines",
             .issue = 6,
             .issue_title = "Business plane"});
}

}  // namespace triplane::cli
