#pragma once

// A PostgreSQL 15 cluster of the test's own (initdb into a temporary folder, loopback, a
// free port, as user `postgres` when run as root, like deploy/local/stack.sh), so a test
// can stop, crash and restart it without disturbing the stack's database that other
// tests use. Its database `tinyfleet` is empty (fleetd migrates it at start).
#include <filesystem>
#include <string>

namespace tinyfleet::testing {

class PrivatePostgres {
 public:
  PrivatePostgres();   // initdb; throws std::runtime_error naming what failed
  ~PrivatePostgres();  // stops it and removes the folder
  PrivatePostgres(const PrivatePostgres&) = delete;
  PrivatePostgres& operator=(const PrivatePostgres&) = delete;

  bool start();  // returns once it accepts connections (60 s at most); creates the database
  // `immediate`: no shutdown checkpoint, as a crash (the next start runs recovery);
  // otherwise a fast shutdown (connections are terminated).
  bool stop(bool immediate = false);
  int port() const { return port_; }
  std::string uri() const {
    return "postgresql://tinyfleet@127.0.0.1:" + std::to_string(port_) + "/tinyfleet";
  }

 private:
  bool run(const std::string& command) const;  // as the cluster's owner; true on exit 0
  std::filesystem::path dir_;
  std::string user_;
  int port_ = 0;
  bool created_ = false;
};

}  // namespace tinyfleet::testing
