#pragma once

#include <mutex>
#include <string>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::server {

// Device accounts on the Mosquitto broker: entries of its password file, written
// with mosquitto_passwd into a copy that replaces the file atomically, after which
// the broker is sent SIGHUP to reload it. (The topic ACL is by pattern and needs no
// change per device.)
class BrokerAccounts {
 public:
  BrokerAccounts(std::string passwd_file, int broker_pid)
      : passwd_file_(std::move(passwd_file)), broker_pid_(broker_pid) {}

  bool configured() const { return !passwd_file_.empty(); }
  storage::Expected<storage::Done> add(const std::string& username, const std::string& password);

 private:
  std::string passwd_file_;
  int broker_pid_;
  std::mutex mu_;
};

}  // namespace tinyfleet::server
