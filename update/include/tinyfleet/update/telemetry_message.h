#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/update/wire_format.h"

namespace tinyfleet::update {

// One window of telemetry, published (not retained) on
// tinyfleet/v1/{fleet}/{device}/telemetry. Version 1 carries these fields; a later version
// appends its own after them (per-class counts, per-channel sums, histograms), so a
// version-N decoder reads version 1's fields the same way (docs/update-protocol.md).
struct TelemetryMessage {
  uint64_t seq = 0;      // per device, from 1
  uint64_t ts_unix = 0;  // end of the window (the device's clock)
  uint64_t release = 0;  // installed release
  uint8_t artifact_sha256[32] = {};
  uint32_t inferences = 0;
  float latency_p50_us = 0, latency_p95_us = 0;
  float energy_uj = 0;     // per inference
  float output_psi = -1;   // -1: no baseline
  float input_drift = -1;  // mean |shift| of channel means in baseline deviations; -1: none
  uint32_t probes = 0, probes_correct = 0;
  uint32_t shadow = 0, shadow_agree = 0;
};
inline constexpr uint8_t kTelemetryVersion = 1;
inline constexpr size_t kTelemetryBytes = kHeaderBytes + 3 * 8 + 32 + 4 + 5 * 4 + 4 * 4;

WireStatus encode_telemetry(const TelemetryMessage& m, uint8_t* out, size_t capacity,
                            size_t* written);
WireStatus decode_telemetry(const uint8_t* data, size_t size, TelemetryMessage* out);

}  // namespace tinyfleet::update
