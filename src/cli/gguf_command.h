#pragma once

// `triplane gguf ...`: tools for GGUF model files. AddGgufCommand (commands.h) registers
// the parent `gguf` subcommand and each tool below under it; to add a tool, declare its
// Add function here, define it in its own gguf_<tool>_command.cc, and append it to the
// list in AddGgufCommand (gguf_command.cc).

#include "CLI/CLI.hpp"
#include "cli/commands.h"

namespace triplane::cli {

// `triplane gguf inspect FILE [--json]`: version, alignment, metadata, tensor table,
// parameter count and bytes per tensor type. A bad file: one line on stderr, exit 1.
Command AddGgufInspectCommand(CLI::App& gguf);

// `triplane gguf random --arch A --size S --type T --vocab-from FILE --seed N --out FILE`:
// a random-weight model with a real tokenizer (gguf_random_command.cc).
Command AddGgufRandomCommand(CLI::App& gguf);

}  // namespace triplane::cli
