#pragma once

// Subcommands that are announced but not built yet. They are listed in --help so the
// command line's shape is visible from the first release, accept any arguments, and
// when run say plainly which issue brings them; they never pretend to work.

#include <string_view>

#include "CLI/CLI.hpp"
#include "cli/commands.h"

namespace triplane::cli {

struct PlannedCommand {
  std::string_view name;         // subcommand name, e.g. "engine"
  std::string_view description;  // one line for --help
  int issue = 0;                 // the issue that delivers it
  std::string_view issue_title;  // e.g. "Data plane II"
};

// Registers `planned` under `root`. Running it prints one line to stderr, e.g.
// "triplane engine: not available yet; it arrives with issue #4 (Data plane II)",
// and returns kExitNotImplemented. Arguments after the subcommand are accepted and
// ignored (the subcommand does not fall through to the root's options).
Command AddPlannedCommand(CLI::App& root, const PlannedCommand& planned);

}  // namespace triplane::cli
