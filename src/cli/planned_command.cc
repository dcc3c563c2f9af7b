#include "cli/planned_command.h"

#include <cstdio>
#include <string>

#include "fmt/format.h"

namespace triplane::cli {

Command AddPlannedCommand(CLI::App& root, const PlannedCommand& planned) {
  CLI::App* app = root.add_subcommand(std::string(planned.name),
                                      fmt::format("{} (not available yet)", planned.description));
  // Future flags are unknown today: take everything after the subcommand as extras
  // rather than passing it up to the root, which would reject it.
  app->allow_extras();
  app->fallthrough(false);
  const std::string message =
      fmt::format("triplane {}: not available yet; it arrives with issue #{} ({})\n", planned.name,
                  planned.issue, planned.issue_title);
  return {app, [message] {
            std::fputs(message.c_str(), stderr);
            return kExitNotImplemented;
          }};
}

}  // namespace triplane::cli
