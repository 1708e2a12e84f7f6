#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tinyfleet/server/device_rejects.h"
#include "tinyfleet/server/telemetry_spool.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/storage/records.h"
#include "tinyfleet/update/telemetry_message.h"

namespace tinyfleet::server {

// Telemetry windows from the broker into the partitioned table: parsed on arrival,
// checked, queued, and written in batches with COPY (every 250 ms or 2,000 rows). Each
// row is tagged with the rollout its device is in (refreshed from the database).
//
// Per device, before a window is queued: a version-2 window whose seq is not above the
// last one stored from the device is a replay (or old) and is dropped; windows beyond
// the device's budget (a token bucket: `windows_per_minute`, up to `burst` at once) are
// dropped. Both are counted (replayed(), rate_limited(), and in `rejects` per device),
// never stored, so one flooding device cannot crowd out the others. While the database is
// away (a write fails as unavailable) the windows stay queued (up to `max_queue`) and are
// written once it is back; only what exceeds the bound is dropped (counted). start() loads each
// device's last stored seq of the last day, so a replay after a restart is dropped too. The writer
// thread also drops the day partitions older than `retention_days` (at start, then hourly).
class TelemetryIngest {
 public:
  struct Limits {
    double windows_per_minute = 60;  // per device, sustained (a 10 s window is 6)
    double burst = 40;               // per device at once (a reconnect flushes up to 32)
    int retention_days = 30;         // 0: keep every partition
    size_t max_devices = 100000;     // per-device state kept (then cleared)
  };

  explicit TelemetryIngest(storage::Database& db, size_t max_queue = 200000);
  ~TelemetryIngest();
  void set_limits(const Limits& limits) { limits_ = limits; }  // before start()
  void start();
  void stop();  // writes what is queued
  // From the listener's thread. A window that does not decode or has a value out of
  // range (see out_of_range), a replayed one and one over the device's budget are
  // counted (and in `rejects` per device) and dropped. Never throws.
  void on_message(const std::string& fleet, const std::string& device, const std::string& payload);
  // Where malformed windows are counted (set before start(); may stay null).
  void set_rejects(DeviceRejects* rejects) { rejects_ = rejects; }
  // Windows queued but not yet committed are spooled to files in `dir` (this replica's
  // own): start() replays what a killed process left (telemetry_spool.h). Before start().
  void set_spool_dir(const std::string& dir);
  uint64_t replayed_from_spool() const { return spool_replayed_; }
  // What is wrong with a decoded window (a non-finite or negative latency, energy, PSI
  // or drift other than -1, more correct probes or shadow agreements than runs,
  // inferences or failures above INT32_MAX, an active time or energy no window can
  // have, a device clock a day or more ahead of `now_unix`); nullptr when nothing is.
  static const char* out_of_range(const update::TelemetryMessage& m, uint64_t now_unix);
  // The row stored for a window received at `now_unix_ms`.
  static storage::TelemetryRow to_row(const std::string& device, const update::TelemetryMessage& m,
                                      int64_t now_unix_ms);

  uint64_t received() const { return received_; }
  uint64_t written() const { return written_; }
  uint64_t rejected() const { return rejected_; }  // malformed or out of range
  uint64_t replayed() const { return replayed_; }
  uint64_t rate_limited() const { return rate_limited_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t partitions_dropped() const { return partitions_dropped_; }
  // How long the oldest window received and not yet stored has waited (0: none waits):
  // whether ingestion keeps up, in seconds rather than messages.
  double lag_seconds();

 private:
  struct PerDevice {
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled{};
    uint64_t last_seq = 0;
  };
  void run();
  void load_last_seqs();
  void refresh_rollouts();
  void apply_retention();
  // Takes one window from the device's budget; false when it has none.
  bool admit(PerDevice& d, std::chrono::steady_clock::time_point now);
  void reject(DeviceRejects::Kind kind, const std::string& fleet, const std::string& device,
              const std::string& reason);

  storage::Database& db_;
  size_t max_queue_;
  Limits limits_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<storage::TelemetryRow> queue_;
  std::map<std::string, int64_t> rollout_of_;  // device -> active rollout
  std::mutex devices_mu_;
  std::unordered_map<std::string, PerDevice> devices_;  // under devices_mu_
  std::thread thread_;
  std::unique_ptr<TelemetrySpool> spool_;  // under mu_; may be null
  std::vector<uint64_t> queued_segments_;  // under mu_: spool segments of queue_'s rows
  int64_t writing_oldest_ms_ = 0;          // under mu_: receipt time of the batch being written
  std::atomic<uint64_t> spool_replayed_{0};
  DeviceRejects* rejects_ = nullptr;
  bool stop_ = false;
  std::atomic<uint64_t> received_{0}, written_{0}, rejected_{0}, replayed_{0}, rate_limited_{0},
      dropped_{0}, partitions_dropped_{0};
};

}  // namespace tinyfleet::server
