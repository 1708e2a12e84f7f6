#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/device_agent/ports.h"
#include "tinyfleet/device_agent/telemetry.h"
#include "tinyfleet/device_agent/update_agent.h"

namespace tinyfleet::device_agent {

struct InferenceConfig {
  uint64_t clock_hz = 0;            // the class's power model: energy per inference is
  float active_mw = 0;              // modelled cycles / clock x active power
  uint32_t window_ms = 10000;       // one telemetry window
  uint32_t shadow_inferences = 50;  // after a switch, run the old model alongside this long
};

// Runs the active model over the device's inputs and publishes a telemetry window
// every window_ms: count, latency p50/p95, energy, output PSI and input drift against
// the manifest's baseline, probe accuracy and shadow agreement (version 1), and the
// window's sufficient statistics: failures, class counts, channel sums and sums of
// squares, latency histogram, measured active time, measured (EnergyMeter) and
// modelled energy (version 2). Sequence numbers start at the boot's wall-clock second
// x 2^20, so they keep increasing across restarts (fleetd drops a seq it has seen).
// Windows keep their cadence: a window closed late by a late poll() does not push the
// next one later (a device polled every 50 ms sent about 9,760 one-second windows a
// second per 10,000 devices), unless poll() came a whole window late (then the next
// starts then: no burst of windows after a stall). Windows that cannot be
// sent (offline) wait in a bounded ring and are flushed on reconnect. Fixed memory.
class InferenceLoop {
 public:
  static constexpr size_t kMaxInputBytes = 4096;
  static constexpr size_t kMaxOutputBytes = 1024;

  // `meter` (may be null) is read at the start and the end of each window.
  InferenceLoop(const InferenceConfig& config, UpdateAgent& agent, Clock& clock, Outbox& outbox,
                EnergyMeter* meter = nullptr);

  // Quantizes `sample` (floats in the model's input layout) and runs the active model
  // (and the shadow after a switch). A label >= 0 marks a probe sample. Returns the
  // predicted class, or -1 when no model runs.
  int infer(const float* sample, size_t len, int label);
  // Closes the window when it is due and sends what waits.
  void poll();
  void flush();  // after a reconnect
  const TelemetryRing& pending() const { return ring_; }
  uint64_t windows_sent() const { return sent_; }
  uint32_t current_window_inferences() const { return stats_.inferences(); }

 private:
  InferenceConfig config_;
  UpdateAgent& agent_;
  Clock& clock_;
  Outbox& outbox_;
  EnergyMeter* meter_;
  uint64_t energy_start_uj_ = 0;
  bool energy_start_ok_ = false;
  WindowStats stats_;
  TelemetryRing ring_;
  uint64_t window_start_ms_ = 0;
  uint64_t seq_ = 0, sent_ = 0;
  uint64_t shadow_release_ = 0;
  uint32_t shadow_left_ = 0;
  int8_t input_[kMaxInputBytes];
  int8_t output_[kMaxOutputBytes];
  int8_t shadow_output_[kMaxOutputBytes];
};

}  // namespace tinyfleet::device_agent
