#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/update/wire_format.h"

namespace tinyfleet::update {

// Bounds of a version-2 window (docs/update-protocol.md).
inline constexpr size_t kTelemetryMaxClasses = 64;   // output classes counted
inline constexpr size_t kTelemetryMaxChannels = 64;  // input channels summed
// Latency histogram: bucket 0 counts inferences under 2 us, bucket i (1..22) counts
// [2^i, 2^(i+1)) us, bucket 23 everything from 2^23 us up (server/src/rollouts/
// device_stats.h's kLatencyBuckets).
inline constexpr size_t kTelemetryLatencyBuckets = 24;
// The bucket of a latency (in us) in that histogram.
size_t latency_bucket(uint64_t latency_us);

// flags (version 2)
inline constexpr uint8_t kTelemetryEnergyMeasured = 1;  // energy_measured_uj is present

// One window of telemetry, published (not retained) on
// tinyfleet/v1/{fleet}/{device}/telemetry. Version 1 carries the fields up to
// shadow_agree; version 2 appends the sufficient statistics after them, so a version-2
// decoder reads version 1's fields the same way and a version-1 message (old devices)
// still decodes, with the version-2 fields zero (docs/update-protocol.md).
struct TelemetryMessage {
  uint8_t version = 2;   // what encode writes; what decode read
  uint64_t seq = 0;      // per device, increasing (across restarts from version 2 on)
  uint64_t ts_unix = 0;  // end of the window (the device's clock)
  uint64_t release = 0;  // installed release
  uint8_t artifact_sha256[32] = {};
  uint32_t inferences = 0;  // inferences that ran (failures not included)
  float latency_p50_us = 0, latency_p95_us = 0;
  float energy_uj = 0;     // per inference, modelled
  float output_psi = -1;   // -1: no baseline (device-side; fleetd no longer trusts it)
  float input_drift = -1;  // mean |shift| of channel means in baseline deviations; -1: none
  uint32_t probes = 0, probes_correct = 0;
  uint32_t shadow = 0, shadow_agree = 0;

  // Version 2: sufficient statistics of the window.
  uint32_t failures = 0;  // runs that failed
  uint8_t classes = 0;    // entries of class_counts (<= kTelemetryMaxClasses)
  uint32_t class_counts[kTelemetryMaxClasses] = {};  // top-1 output class histogram
  uint8_t channels = 0;      // entries of input_sum / input_sumsq (<= kTelemetryMaxChannels)
  uint32_t input_count = 0;  // inputs behind the channel sums
  // Per channel, over the window's inputs: the sum and the sum of squares of the
  // input's mean value on that channel.
  double input_sum[kTelemetryMaxChannels] = {};
  double input_sumsq[kTelemetryMaxChannels] = {};
  uint32_t latency_hist[kTelemetryLatencyBuckets] = {};
  uint64_t active_us = 0;         // measured time spent in inference
  uint8_t flags = 0;              // kTelemetryEnergyMeasured
  double energy_measured_uj = 0;  // the energy meter's count over the window
  double energy_modelled_uj = 0;  // the compiler's figure x inferences
};
inline constexpr uint8_t kTelemetryVersion = 2;
inline constexpr size_t kTelemetryV1Bytes = kHeaderBytes + 3 * 8 + 32 + 4 + 5 * 4 + 4 * 4;
// The largest encoded window (every class and channel present).
inline constexpr size_t kTelemetryMaxBytes = kTelemetryV1Bytes + 4 + 1 + 4 * kTelemetryMaxClasses +
                                             1 + 4 + 16 * kTelemetryMaxChannels +
                                             4 * kTelemetryLatencyBuckets + 8 + 1 + 8 + 8;

// Encodes m in its `version` (1 or 2; version 1 leaves out the version-2 fields).
WireStatus encode_telemetry(const TelemetryMessage& m, uint8_t* out, size_t capacity,
                            size_t* written);
// Reads versions 1 and 2. Refuses (kBadValue, naming the field) counts that cannot be:
// correct probes or shadow agreements above their runs, class or histogram counts
// summing above the inferences, a non-finite sum or energy, a negative sum of squares
// or energy, unknown flags; more classes or channels than the bounds is kTooLong.
WireStatus decode_telemetry(const uint8_t* data, size_t size, TelemetryMessage* out);

}  // namespace tinyfleet::update
