#pragma once

// Every fleetctl command, its arguments and options, with their help, in one table: the
// parser, per-command --help, shell completion and docs/fleetctl.md come from it.
#include <string>
#include <vector>

namespace tinyfleet::fleetctl {

struct OptionSpec {
  enum Kind { kText, kNumber, kFlag };
  const char* name;  // without the leading "--"
  Kind kind;
  const char* help;
};

struct VerbSpec {
  const char* name;         // "" for a group that takes options itself (telemetry)
  const char* positionals;  // space-separated; "[ID]" is optional, "N" is a number
  const char* summary;
  std::vector<OptionSpec> options;
};

struct GroupSpec {
  const char* name;
  const char* summary;
  const char* default_verb;  // run when no verb is given; nullptr: a verb is required
  bool needs_fleetd;         // keys and completion work offline
  std::vector<VerbSpec> verbs;
};

const std::vector<GroupSpec>& command_table();
// The options every command takes (connection and output).
const std::vector<OptionSpec>& global_options();

}  // namespace tinyfleet::fleetctl
