#pragma once

// A Mosquitto of the test's own on a free loopback port, with the stack's accounts and
// ACL, so a test can kill and restart it without disturbing other tests. With
// `persistence` on it saves as the stack's broker does (deploy/local/stack.sh: every
// second), so a SIGKILL loses at most the last second; off, a restart loses every
// retained message (as a crash of a broker that saved nothing would).
#include <sys/types.h>

#include <filesystem>
#include <string>

namespace tinyfleet::testing {

class PrivateBroker {
 public:
  explicit PrivateBroker(bool persistence = true);
  ~PrivateBroker();
  PrivateBroker(const PrivateBroker&) = delete;
  PrivateBroker& operator=(const PrivateBroker&) = delete;

  void start();  // returns once it accepts connections (5 s at most)
  void stop();   // SIGTERM (Mosquitto saves its persistence file)
  void kill();   // SIGKILL: a crash
  int port() const { return port_; }
  pid_t pid() const { return pid_; }  // -1 while stopped
  // Its own copy of the stack's password file (fleetd's mqtt.passwd_file, so devices
  // provisioned through fleetd can connect; send SIGHUP to pid() after a change).
  std::string passwd_file() const { return (dir_ / "passwd").string(); }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

 private:
  void signal_and_wait(int sig);
  std::filesystem::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace tinyfleet::testing
