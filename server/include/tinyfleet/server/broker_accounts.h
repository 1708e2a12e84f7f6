#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::server {

// Device accounts on the Mosquitto broker: entries of its password file, written
// with mosquitto_passwd into a copy that replaces the file atomically, after which
// the broker is sent SIGHUP to reload it. (The topic ACL is by pattern and needs no
// change per device.)
//
// Mosquitto 2.0 clears its reload flag only after reloading, so a SIGHUP that lands
// during a reload is lost (seen: the last of 200 accounts provisioned back to back
// stayed "not authorised"). Each change therefore also schedules one trailing SIGHUP,
// sent once no change has come for kSettle, when every earlier reload is over.
class BrokerAccounts {
 public:
  static constexpr std::chrono::milliseconds kSettle{300};
  BrokerAccounts(std::string passwd_file, int broker_pid)
      : passwd_file_(std::move(passwd_file)), broker_pid_(broker_pid) {}
  ~BrokerAccounts();
  BrokerAccounts(const BrokerAccounts&) = delete;
  BrokerAccounts& operator=(const BrokerAccounts&) = delete;

  bool configured() const { return !passwd_file_.empty(); }
  storage::Expected<storage::Done> add(const std::string& username, const std::string& password);

 private:
  std::string passwd_file_;
  int broker_pid_;
  std::mutex mu_;
  void schedule_reload();
  void reload_loop();
  std::mutex reload_mu_;
  std::condition_variable reload_cv_;
  std::chrono::steady_clock::time_point reload_at_{};
  bool reload_pending_ = false, stopping_ = false;
  std::thread reloader_;
};

}  // namespace tinyfleet::server
