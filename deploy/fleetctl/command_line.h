#pragma once

// fleetctl's command line, parsed with CLI11 from command_table(): per-command --help,
// --version, unknown options and options without their value refused (exit 2).
#include <string>

#include "cli.h"

namespace tinyfleet::fleetctl {

// Fills `out` (positional = GROUP, VERB, arguments; options by name) and returns -1 to
// go on, or the exit code when there is nothing more to do (help, version, a usage error
// already printed).
int parse_command_line(int argc, char** argv, Args* out);

// `fleetctl completion bash`: a completion script generated from command_table().
std::string bash_completion();

}  // namespace tinyfleet::fleetctl
