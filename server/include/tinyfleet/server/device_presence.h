#pragma once

// Whether devices are online: a device's presence messages (online; offline, also as its
// MQTT will when its connection dies) and any message it sends mark it heard; a device
// not heard for `offline_after` is marked offline. Writes are batched: the MQTT thread
// only records, a worker applies once a second (at most one pending event per device).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "tinyfleet/storage/database.h"

namespace tinyfleet::server {

class DeviceRejects;

class DevicePresence {
 public:
  // offline_after 0: silence never marks a device offline (presence messages still do).
  DevicePresence(storage::Database& db, std::chrono::seconds offline_after,
                 DeviceRejects* rejects = nullptr);
  ~DevicePresence();

  void start();
  void stop();

  // The device's presence message (update::decode_presence); malformed ones are counted
  // and dropped.
  void on_presence(const std::string& fleet, const std::string& device, const std::string& payload);
  // Any other message from the device (status, telemetry).
  void heard(const std::string& device);

  // One round now: pending events written, silent devices marked offline. Returns the
  // devices changed (for tests; the worker calls it every second).
  int apply();

 private:
  enum class Event { kHeard, kOnline, kOffline };
  storage::Database& db_;
  std::chrono::seconds offline_after_;
  DeviceRejects* rejects_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Event> pending_;  // by device id; bounded by the devices that exist
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace tinyfleet::server
