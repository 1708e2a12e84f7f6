#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/update/telemetry_message.h"

namespace tinyfleet::device_agent {

inline constexpr size_t kMaxClasses = 16;       // output classes the drift histogram tracks
inline constexpr size_t kMaxChannels = 32;      // input channels (or features) tracked
inline constexpr size_t kLatencySamples = 256;  // per window; later ones are sampled

// What the device knows of the model it runs, from the manifest that installed it;
// persisted per slot so a rollback brings the right baseline back.
struct ModelInfo {
  uint32_t magic = 0x494d4654;  // "TFMI"
  uint8_t classes = 0;          // baseline histogram entries (0: no baseline)
  uint8_t channels = 0;         // baseline input channels
  uint8_t reserved[2] = {};
  float class_histogram[kMaxClasses] = {};
  float channel_mean[kMaxChannels] = {};
  float channel_std[kMaxChannels] = {};
  uint64_t modelled_cycles = 0;  // per inference; 0 when unknown
};

// Population stability index of an observed class histogram (counts) against the
// baseline fractions; both floored at 1e-4 so an empty bin does not blow up. This is the
// version-1 field output_psi: per device and per window it is biased far above 0 on
// clean data, so fleetd no longer trusts it and computes drift from the pooled
// class_counts instead (docs/telemetry.md).
float population_stability(const uint32_t* counts, const float* baseline, size_t classes);

// One window of telemetry, as published on tinyfleet/v1/{fleet}/{device}/telemetry
// (encoded by update::encode_telemetry).
using TelemetryWindow = update::TelemetryMessage;

// Accumulates one window with fixed memory.
class WindowStats {
 public:
  void reset();
  // `input` is channels-last (NHWC, or the K features of an [N, K] input); `active_us`
  // is the measured time of the run (the clock port).
  void add(uint32_t latency_us, int top_class, const float* input, size_t input_len,
           size_t channels, uint64_t active_us);
  void add_failure() { ++failures_; }
  void add_probe(bool correct);
  void add_shadow(bool agree);
  // Closes the window against the model's baseline into `out`: the version-1 fields
  // (counts, percentiles, PSI, input drift, modelled energy per inference from the
  // modelled cycles and the class's power model) and the version-2 statistics (class
  // counts, channel sums and sums of squares, latency histogram, measured active time,
  // modelled energy of the window). The measured energy is the caller's (EnergyMeter).
  void close(const ModelInfo& info, uint64_t clock_hz, float active_mw, TelemetryWindow* out);
  uint32_t inferences() const { return inferences_; }
  uint32_t failures() const { return failures_; }

 private:
  uint32_t inferences_ = 0;
  uint32_t latency_[kLatencySamples] = {};
  uint32_t latency_n_ = 0;
  uint32_t classes_[kMaxClasses] = {};
  uint8_t top_seen_ = 0;  // classes seen: 1 + the highest top class
  double channel_sum_[kMaxChannels] = {};
  double channel_sumsq_[kMaxChannels] = {};
  uint8_t channels_ = 0;
  uint32_t channel_n_ = 0;
  uint32_t latency_hist_[update::kTelemetryLatencyBuckets] = {};
  uint64_t active_us_ = 0;
  uint32_t failures_ = 0;
  uint32_t probes_ = 0, probes_correct_ = 0, shadow_ = 0, shadow_agree_ = 0;
};

// Bytes of encoded windows kept while the device is offline. The firmware keeps 4 KB
// (about 13 windows of a 10-class, 1-channel model; 5 of the largest a device sends);
// the Linux port defines it larger (device_agent/CMakeLists.txt).
#ifndef TINYFLEET_TELEMETRY_RING_BYTES
#define TINYFLEET_TELEMETRY_RING_BYTES 4096
#endif

// Windows waiting to be sent while the device is offline, encoded (a window is 100 to
// 1,500 bytes, so the ring holds them as bytes, not as TelemetryWindow values): the
// oldest are dropped (and counted) when a new one does not fit. Fixed memory.
class TelemetryRing {
 public:
  static constexpr size_t kBytes = TINYFLEET_TELEMETRY_RING_BYTES;
  // Encodes `w` and appends it; false (and dropped) when it cannot be encoded.
  bool push(const TelemetryWindow& w);
  // Appends an encoded window, dropping the oldest until it fits; false when it is
  // larger than the ring.
  bool push(const uint8_t* message, size_t size);
  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  // The oldest window's bytes (valid until the next push or pop).
  const uint8_t* front(size_t* size) const;
  void pop();
  uint64_t dropped() const { return dropped_; }

 private:
  // Entries back to back from offset 0: u16 length (little-endian), then the bytes.
  uint8_t bytes_[kBytes] = {};
  size_t used_ = 0, count_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace tinyfleet::device_agent
