// fleetctl: the operator's command line for fleetd.
//   fleetctl [--endpoint HOST:PORT] [--token T] [--json] GROUP VERB [ARGS] [--OPTIONS]
// Every command and option is in command_table.cpp; 'fleetctl GROUP VERB --help'.
#include <cstdio>

#include "cli.h"
#include "command_line.h"

using namespace tinyfleet::fleetctl;

int main(int argc, char** argv) {
  Args a;
  if (const int done = parse_command_line(argc, argv, &a); done >= 0) return done;
  const std::string group = a.positional[0];
  if (group == "keys") return cmd_keys(a);
  if (group == "completion") {
    std::fputs(bash_completion().c_str(), stdout);
    return kOk;
  }
  const Connection c = connection_from(a);
  if (group == "tokens") return cmd_tokens(a, c);
  if (group == "classes") return cmd_classes(a, c);
  if (group == "devices") return cmd_devices(a, c);
  if (group == "models") return cmd_models(a, c);
  if (group == "versions") return cmd_versions(a, c);
  if (group == "compiles") return cmd_compiles(a, c);
  if (group == "rollouts" || group == "rollout") return cmd_rollouts(a, c);
  if (group == "telemetry") return cmd_telemetry(a, c);
  if (group == "status") return cmd_status(a, c);
  usage_error("unknown command '" + group + "'");
}
