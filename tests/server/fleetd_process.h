#pragma once

#include <sys/types.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

namespace tinyfleet::testing {

// The real fleetd binary as a child process on a free loopback port, against a
// given database. Killed (SIGKILL) when the object goes, unless stopped before.
class FleetdProcess {
 public:
  // `settings`: extra --key=value flags (e.g. TLS files).
  FleetdProcess(const std::string& database_uri, const std::string& admin_token,
                std::map<std::string, std::string> settings = {});
  ~FleetdProcess();

  void start();      // returns once fleetd is serving (or fails the test)
  void kill_hard();  // SIGKILL, no chance to clean up
  int terminate();   // SIGTERM; returns the exit status
  int port() const { return port_; }
  int metrics_port() const;            // from the log's "metrics.serving" line; 0 if none
  std::string scrape_metrics() const;  // GET /metrics on it: the exposition text
  int console_port() const;            // from the log's "console.serving" line; 0 if none
  pid_t pid() const { return pid_; }
  std::string log() const;  // fleetd's structured log so far
  std::shared_ptr<grpc::Channel> channel() const;

 private:
  int serving_port(const std::string& event) const;
  std::string dir_;
  std::string database_uri_;
  std::string admin_token_;
  std::map<std::string, std::string> settings_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A shell command's exit code (-1 if it did not exit) and its standard output.
struct CommandResult {
  int exit = -1;
  std::string out;
};
CommandResult run_command(const std::string& command);

// Starts `argv` (argv[0] a path) as a child process with its standard output in
// `stdout_path` (truncated); the child's pid, -1 if fork failed. The caller's buffered
// stdout and stderr are flushed first: a child that reopens stdout flushes the copy of
// the buffer it inherited, so what the caller had not written yet would appear twice.
// `nice` (0-19) lowers the child's CPU priority before it starts (its threads inherit it).
pid_t spawn_with_stdout(const std::vector<std::string>& argv, const std::string& stdout_path,
                        int nice = 0);

#ifdef TINYFLEET_FLEETCTL
// fleetctl `args` against the fleetd on 127.0.0.1:`port` as `token` (no config file;
// its stderr in `out` too), the command logged with the test's `elapsed` seconds.
inline CommandResult run_fleetctl(int port, const std::string& token, const std::string& args,
                                  double elapsed) {
  std::printf("[%5.1fs] fleetctl %s\n", elapsed, args.substr(0, 70).c_str());
  std::fflush(stdout);
  return run_command("FLEETCTL_ENDPOINT=127.0.0.1:" + std::to_string(port) +
                     " FLEETCTL_TOKEN=" + token + " FLEETCTL_CONFIG=/nonexistent " +
                     TINYFLEET_FLEETCTL + " " + args + " 2>&1");
}
#endif

// The body of an HTTP/1.0 GET of `path` on 127.0.0.1:`port` ("" on any failure).
std::string http_get(int port, const std::string& path);

// A client context carrying "authorization: Bearer <token>" (none when empty).
std::unique_ptr<grpc::ClientContext> context_with_token(const std::string& token);

}  // namespace tinyfleet::testing
