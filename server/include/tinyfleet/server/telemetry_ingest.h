#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tinyfleet/server/device_rejects.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/storage/records.h"
#include "tinyfleet/update/telemetry_message.h"

namespace tinyfleet::server {

// Telemetry windows from the broker into the partitioned table: parsed on arrival,
// queued, and written in batches with COPY (every 250 ms or 2,000 rows). Each row is
// tagged with the rollout its device is in (refreshed from the database).
class TelemetryIngest {
 public:
  explicit TelemetryIngest(storage::Database& db, size_t max_queue = 200000);
  ~TelemetryIngest();
  void start();
  void stop();  // writes what is queued
  // From the listener's thread. A window that does not decode or has a value out of
  // range (see out_of_range) is counted (rejected(), and in `rejects` per device) and
  // dropped. Never throws.
  void on_message(const std::string& fleet, const std::string& device, const std::string& payload);
  // Where malformed windows are counted (set before start(); may stay null).
  void set_rejects(DeviceRejects* rejects) { rejects_ = rejects; }
  // What is wrong with a decoded window (a non-finite or negative latency, energy, PSI
  // or drift other than -1, more correct probes or shadow agreements than runs,
  // inferences above INT32_MAX); nullptr when nothing is.
  static const char* out_of_range(const update::TelemetryMessage& m);

  uint64_t received() const { return received_; }
  uint64_t written() const { return written_; }
  uint64_t rejected() const { return rejected_; }
  uint64_t dropped() const { return dropped_; }

 private:
  void run();
  void refresh_rollouts();

  storage::Database& db_;
  size_t max_queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<storage::TelemetryRow> queue_;
  std::map<std::string, int64_t> rollout_of_;  // device -> active rollout
  std::thread thread_;
  DeviceRejects* rejects_ = nullptr;
  bool stop_ = false;
  std::atomic<uint64_t> received_{0}, written_{0}, rejected_{0}, dropped_{0};
};

}  // namespace tinyfleet::server
