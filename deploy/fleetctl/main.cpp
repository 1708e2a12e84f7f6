// fleetctl: the operator's command line for fleetd.
//   fleetctl [--endpoint HOST:PORT] [--token T] [--json] GROUP VERB [ARGS] [--OPTIONS]
#include <cstdio>
#include <cstring>

#include "cli.h"

using namespace tinyfleet::fleetctl;

namespace {

const char* kHelp = R"(fleetctl: operate a tinyfleet fleet

  keys init|rotate --dir DIR [--days N]        signing keys (offline; no fleetd needed)
  tokens create NAME --role R | list | revoke NAME
  classes import CATALOG.json | list
  devices provision ID --class C [--tags a,b] | provision --count N --prefix P --class C
          [--credentials-out FILE] | list [--class C] [--tag T] | get ID
  models create NAME [--description D] | get NAME
  versions create MODEL --onnx F [--calibration F] [--validation F] --classes a,b
          [--no-wait] | list MODEL | get MODEL N
  compiles start MODEL N [--classes a,b] | watch OPERATION
  rollouts create NAME --model M --version N [--classes a,b] [--tags t] [--devices ids]
          [--phases 1:60,10:60,50:60,100:0] [--gates EXPR] [--on-failure rollback|pause]
          [--rate DEVICES_PER_MINUTE] [--watch]
        | list [--active] | get NAME | watch NAME | pause|resume|promote|abort NAME
  telemetry [--device D | --rollout R] [--since SECONDS] [--bucket SECONDS] [--limit N]

Connection: --endpoint, --token, --ca-file, or FLEETCTL_ENDPOINT / FLEETCTL_TOKEN, or the
config file $FLEETCTL_CONFIG (default ~/.config/tinyfleet/fleetctl.json):
  {"endpoint": "127.0.0.1:7443", "token": "...", "ca_file": "ca.pem"}
--json prints JSON for scripts.

Exit codes: 0 ok, 1 failed (compile refused, rollout rolled back), 2 usage, 3 not found,
4 rejected (invalid or not allowed now), 5 fleetd unreachable, 6 not authorized,
7 rollout paused.
)";

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      std::string key = s.substr(2), value;
      const auto eq = key.find('=');
      if (eq != std::string::npos) {
        value = key.substr(eq + 1);
        key = key.substr(0, eq);
      } else if (i + 1 < argc && std::strncmp(argv[i + 1], "--", 2) != 0 && key != "json" &&
                 key != "watch" && key != "active" && key != "no-wait" && key != "no-compile") {
        value = argv[++i];
      }
      a.options[key] = value;
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (a.positional.empty() || a.positional[0] == "help" || a.has("help")) {
    std::fputs(kHelp, a.positional.empty() && !a.has("help") ? stderr : stdout);
    return a.positional.empty() && !a.has("help") ? kUsage : kOk;
  }
  const std::string group = a.positional[0];
  if (group == "keys") return cmd_keys(a);
  const Connection c = connection_from(a);
  if (group == "tokens") return cmd_tokens(a, c);
  if (group == "classes") return cmd_classes(a, c);
  if (group == "devices") return cmd_devices(a, c);
  if (group == "models") return cmd_models(a, c);
  if (group == "versions") return cmd_versions(a, c);
  if (group == "compiles") return cmd_compiles(a, c);
  if (group == "rollouts" || group == "rollout") return cmd_rollouts(a, c);
  if (group == "telemetry") return cmd_telemetry(a, c);
  usage_error("unknown command '" + group + "'");
}
