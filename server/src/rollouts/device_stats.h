#pragma once

// What one device reported on one artifact, as sufficient statistics: the sums of its
// telemetry windows (counts, per-channel sums and sums of squares, a latency histogram,
// measured time and energy). The repository reads these per device; the gate statistics
// (gate_statistics.h) pool them across devices with a per-device cap, so no single
// device moves a cohort metric by more than its share.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tinyfleet::server::rollouts {

// Latency histogram: bucket 0 counts inferences under 2 us, bucket i (1..kLatencyBuckets-2)
// counts [2^i, 2^(i+1)) us, the last bucket everything from 2^(kLatencyBuckets-1) us up.
inline constexpr int kLatencyBuckets = 24;

struct DeviceStats {
  std::string device_id;
  uint32_t windows = 0;  // telemetry windows summed here
  uint64_t inferences = 0, failures = 0;
  uint64_t probe_correct = 0, probe_total = 0;  // labelled probes run on the device
  uint64_t shadow_agree = 0, shadow_total = 0;  // shadow (old model) agreement
  std::vector<uint64_t> class_counts;           // top-1 output class histogram
  uint64_t input_count = 0;                     // samples behind the channel sums
  std::vector<double> input_sum, input_sumsq;   // per input channel
  std::vector<uint64_t> latency_hist;           // kLatencyBuckets entries (or empty)
  double active_seconds = 0;                    // measured time spent in inference
  std::optional<double> energy_measured_uj;     // from an energy meter, when present
  double energy_modelled_uj = 0;                // compiler's model x inferences
};

}  // namespace tinyfleet::server::rollouts
