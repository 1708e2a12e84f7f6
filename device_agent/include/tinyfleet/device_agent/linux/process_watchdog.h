#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "tinyfleet/device_agent/ports.h"

namespace tinyfleet::device_agent::linux_port {

// The Linux watchdog port: a thread that, when an armed countdown expires, writes a
// marker file (fsync'd) into the device's folder and "resets" the device: by default it
// ends the process (_exit), and the supervisor (systemd, the test) starts it again; a
// reset hook may replace that (fleet-sim restarts one simulated device). The next boot's
// caused_reset() finds and removes the marker.
class ProcessWatchdog final : public Watchdog {
 public:
  static constexpr int kResetExitCode = 71;  // what the process exits with on a reset

  explicit ProcessWatchdog(std::string dir, std::function<void()> reset = {});
  ~ProcessWatchdog() override;
  ProcessWatchdog(const ProcessWatchdog&) = delete;
  ProcessWatchdog& operator=(const ProcessWatchdog&) = delete;

  void arm(uint32_t timeout_ms) override;
  void disarm() override;
  bool caused_reset() override;

 private:
  void run();

  std::string marker_;
  std::function<void()> reset_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false, stop_ = false;
  std::chrono::steady_clock::time_point deadline_;
  std::thread thread_;
};

}  // namespace tinyfleet::device_agent::linux_port
