#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace tinyfleet::server {

// Device messages fleetd dropped, counted per device and per kind. Every part that reads
// what a device sends (status, telemetry, chunk requests) parses it into a typed value
// and, when that fails or the value is out of range, calls reject() and drops the
// message. A device's rejections are logged as one "device.message_rejected" line (device,
// kind, the last reason, how many since the last line) at most once per `log_every`, so a
// flooding device cannot flood the log. The counts are fleetd metrics
// (tinyfleet_device_messages_rejected_total{kind}, docs/metrics.md).
class DeviceRejects {
 public:
  enum Kind : uint8_t { kStatus = 0, kTelemetry = 1, kChunkRequest = 2, kKinds = 3 };
  static const char* name(Kind kind);

  // At most `max_devices` devices are tracked for logging (beyond that the table is
  // cleared: a device may then be logged again early, never more often than that).
  explicit DeviceRejects(std::chrono::milliseconds log_every = std::chrono::seconds(60),
                         size_t max_devices = 100000);
  // Thread-safe.
  void reject(Kind kind, const std::string& fleet, const std::string& device,
              const std::string& reason);
  uint64_t total(Kind kind) const { return totals_[kind]; }
  uint64_t of_device(const std::string& device) const;

 private:
  struct PerDevice {
    uint64_t count = 0, unlogged = 0;
    std::chrono::steady_clock::time_point logged{};
  };
  std::chrono::milliseconds log_every_;
  size_t max_devices_;
  mutable std::mutex mu_;
  std::map<std::string, PerDevice> devices_;  // by device id
  std::atomic<uint64_t> totals_[kKinds] = {};
};

}  // namespace tinyfleet::server
