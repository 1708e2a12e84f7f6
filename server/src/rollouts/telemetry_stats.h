#pragma once

// Per-device sufficient statistics from the telemetry table (migration 0011): for spans
// of (device, artifact, time range), one DeviceStats per device that reported, summed in
// SQL over its windows; and a rollout phase's groups (canary, control, baseline) for the
// gate statistics (gate_statistics.h), which pool these across devices. Nothing here
// averages over windows.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "rollouts/device_stats.h"
#include "rollouts/gate_metric_statistics.h"

namespace tinyfleet::server::rollouts::telemetry_stats {

// The windows of `device` on `artifact_sha256` (hex) received in [since, until) (unix ms;
// no until: up to now).
struct Span {
  std::string device, artifact_sha256;
  int64_t since_unix_ms = 0;
  std::optional<int64_t> until_unix_ms;
};

// One DeviceStats per device of `spans` (each device once) that has windows in its span,
// by device id. class_counts, input_sum, input_sumsq and latency_hist are as long as the
// longest a window had (empty when only version-1 windows came); energy_measured_uj is
// set when every window of the device carried a measured figure.
std::vector<DeviceStats> for_spans(pqxx::work& w, const std::vector<Span>& spans);

// The devices of `spans` that have windows in their span, with only device_id and
// windows set: one grouped query, where for_spans makes five.
std::vector<DeviceStats> reporting(pqxx::work& w, const std::vector<Span>& spans);

// The devices of `devices` on one artifact since a time.
std::vector<DeviceStats> for_devices(pqxx::work& w, const std::vector<std::string>& devices,
                                     const std::string& artifact_sha256, int64_t since_unix_ms);

// The same for the devices of rollout `rollout_id` (rollout_devices).
std::vector<DeviceStats> for_rollout(pqxx::work& w, int64_t rollout_id,
                                     const std::string& artifact_sha256, int64_t since_unix_ms);

// Devices a group reads at most (the first by rank), so a gate's cost is bounded.
inline constexpr int kMaxGroupDevices = 5000;
// The baseline window before a rollout started: its phase's bake, at least this long.
inline constexpr int kMinBaselineSeconds = 900;

// The groups phase `phase` of rollout `rollout_id` is gated on:
// - canary: devices of phases 0..phase that updated, each on its target artifact (one per
//   device class) since it updated;
// - control: devices of later phases still pending on an artifact other than their
//   target, on that artifact since the phase started;
// - baseline: the rollout's devices on their artifact from before the rollout (its base,
//   or the current one while pending), in the window of max(the phase's bake,
//   kMinBaselineSeconds) before the rollout was created;
// - baseline_accuracy: the manifest's "accuracy" (model_versions.metadata) of the version
//   the devices ran before, when one is recorded.
// Only what `need` says is read: kNone reads nothing; kReporting only the canary devices
// that reported (as reporting()), the other groups left empty.
CohortStats cohort(pqxx::work& w, int64_t rollout_id, int phase,
                   CohortNeed need = CohortNeed::kFull);

}  // namespace tinyfleet::server::rollouts::telemetry_stats
