#pragma once

// Per-device sufficient statistics from the telemetry table (migration 0011): for a set
// of devices, or a rollout's devices, on one artifact since a time, one DeviceStats per
// device that reported, summed in SQL over its windows. The gate statistics
// (gate_statistics.h) pool these across devices; nothing here averages over windows.
#include <cstdint>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "rollouts/device_stats.h"

namespace tinyfleet::server::rollouts::telemetry_stats {

// The devices of `devices` with windows on `artifact_sha256` (hex) received at or after
// `since_unix_ms`, by device id. class_counts, input_sum, input_sumsq and latency_hist
// are as long as the longest a window had (empty when only version-1 windows came);
// energy_measured_uj is set when every window of the device carried a measured figure.
std::vector<DeviceStats> for_devices(pqxx::work& w, const std::vector<std::string>& devices,
                                     const std::string& artifact_sha256, int64_t since_unix_ms);

// The same for the devices of rollout `rollout_id` (rollout_devices).
std::vector<DeviceStats> for_rollout(pqxx::work& w, int64_t rollout_id,
                                     const std::string& artifact_sha256, int64_t since_unix_ms);

}  // namespace tinyfleet::server::rollouts::telemetry_stats
