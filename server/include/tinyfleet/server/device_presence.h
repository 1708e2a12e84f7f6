#pragma once

// Whether devices are online: a device's presence messages (online; offline, also as its
// MQTT will when its connection dies) and any message it sends mark it heard; a device
// not heard for `offline_after` is marked offline. Writes are batched: the MQTT thread
// only records, a worker applies once a second (at most one pending event per device).
// A device heard again within touch_every() of its last write is not written again: at
// 10,000 devices sending a window a second, rewriting every row each second took as much
// of PostgreSQL as storing the windows (docs/scale.md). The silence sweep allows for that
// slack, so a device is never marked offline before `offline_after` of silence.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

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

  // How long a device's last_seen may lag what this replica heard: offline_after / 10,
  // between 1 s and 30 s (30 s when silence never marks a device offline).
  std::chrono::seconds touch_every() const { return touch_every_; }
  // Messages heard from devices whose row was written less than touch_every() ago.
  uint64_t touches_skipped() const { return touches_skipped_; }

 private:
  enum class Event { kHeard, kOnline, kOffline };
  storage::Database& db_;
  std::chrono::seconds offline_after_;
  std::chrono::seconds touch_every_;
  DeviceRejects* rejects_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Event> pending_;  // by device id; bounded by the devices that exist
  // When each device's row was last written as heard (bounded like pending_).
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> touched_;
  std::atomic<uint64_t> touches_skipped_{0};
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace tinyfleet::server
