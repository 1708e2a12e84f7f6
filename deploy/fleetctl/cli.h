#pragma once

// fleetctl's shared pieces: arguments, the connection to fleetd, exit codes, output.
#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tinyfleet::fleetctl {

// Exit codes: scripts can tell what happened without parsing text.
enum Exit : int {
  kOk = 0,
  kFailed = 1,       // the operation ran and failed (a compile refused, a rollout rolled back)
  kUsage = 2,        // the command line is wrong
  kNotFound = 3,     // a named object does not exist
  kRejected = 4,     // fleetd refused the request as invalid or not allowed in this state
  kUnavailable = 5,  // fleetd cannot be reached
  kDenied = 6,       // the token is missing, unknown or lacks the role
  kPaused = 7,       // rollout watch: the rollout paused (a gate failed, or an operator)
};

// `positional` in order; `--name value` and `--flag` in `options` ("" for a bare flag).
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  bool has(const std::string& k) const { return options.count(k) > 0; }
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = options.find(k);
    return it == options.end() ? def : it->second;
  }
  // The option as a number; exits with kUsage naming it when it is not one.
  double number(const std::string& k, double def) const;
  std::vector<std::string> list(const std::string& k) const;  // comma-separated
};

// Where fleetd is and who we are: flags, then FLEETCTL_ENDPOINT / FLEETCTL_TOKEN, then
// the config file ($FLEETCTL_CONFIG or ~/.config/tinyfleet/fleetctl.json with
// {"endpoint": "host:port", "token": "...", "ca_file": "..."}).
struct Connection {
  std::string endpoint = "127.0.0.1:7443";
  std::string token;
  std::string ca_file;
  bool json = false;  // --json: machine-readable output
  std::shared_ptr<grpc::Channel> channel() const;
  std::unique_ptr<grpc::ClientContext> context() const;
};
Connection connection_from(const Args& args);

[[noreturn]] void usage_error(const std::string& message);
// Prints fleetd's refusal and returns the matching exit code.
int report(const grpc::Status& status, const std::string& doing);

// Output helpers.
void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);
std::string sparkline(const std::vector<double>& values);
std::string progress_bar(double fraction, int width);
std::string read_file_or_die(const std::string& path);
void print_json(const nlohmann::json& j);  // one line
std::string bytes_text(double bytes);      // "256 KB", "1 MB", "4 GB"

// The command groups; each returns an exit code.
int cmd_keys(const Args& a);
int cmd_tokens(const Args& a, const Connection& c);
int cmd_classes(const Args& a, const Connection& c);
int cmd_devices(const Args& a, const Connection& c);
int cmd_models(const Args& a, const Connection& c);
int cmd_versions(const Args& a, const Connection& c);
int cmd_compiles(const Args& a, const Connection& c);
int cmd_rollouts(const Args& a, const Connection& c);
int cmd_telemetry(const Args& a, const Connection& c);
int cmd_status(const Args& a, const Connection& c);

}  // namespace tinyfleet::fleetctl
