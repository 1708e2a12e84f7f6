#pragma once

// The gate metrics (gate_metrics()) on the gate statistics: what the engine calls to
// decide a phase's gates from per-device statistics (telemetry_stats::cohort reads them).
#include <optional>
#include <string>
#include <vector>

#include "rollouts/gate_statistics.h"

namespace tinyfleet::server::rollouts {

// The groups a gate compares. canary: the cohort's devices on the new artifact since they
// updated; control: the rollout's devices still on the old artifact, over the same time;
// baseline: devices on the old artifact before the rollout. baseline_accuracy: the
// manifest's, used for accuracy_drop when no device of control or baseline has probes.
struct CohortStats {
  std::vector<DeviceStats> canary, control, baseline;
  std::optional<double> baseline_accuracy;
};

// The metrics decided here; failure_rate and min_reporting count devices, not telemetry,
// and stay with gates.h (early_failure, settled) and phase_gates.h.
bool statistical_metric(const std::string& metric);

// What of the cohort a gate's clauses read: nothing (failure_rate alone counts rollout
// rows), the canary devices that reported (min_reporting), or every group's statistics
// (a statistical clause). telemetry_stats::cohort reads no more than this.
enum class CohortNeed { kNone, kReporting, kFull };
CohortNeed cohort_need(const std::vector<GateClause>& clauses);

// The estimates of one metric (one per input channel for input_drift; empty when the
// metric is not statistical) and the group they compare the canary with: "control",
// "baseline", "manifest" (accuracy_drop on the manifest's accuracy) or "" (a metric of
// the canary alone). Comparisons take the control group when at least `min_devices` of
// it reported the metric, else the baseline devices.
struct MetricEstimates {
  std::vector<Estimate> estimates;
  std::string reference;
};
MetricEstimates metric_estimates(const std::string& metric, const CohortStats& cohort,
                                 const PoolingPolicy& pooling, int min_devices);

// The devices of a group named as in MetricEstimates::reference ("canary" too); null for
// "manifest" and "".
const std::vector<DeviceStats>* group_devices(const CohortStats& cohort, const std::string& group);

// What one group shows for a metric, beside the comparison: probe accuracy (accuracy,
// accuracy_drop), shadow agreement, measured energy per inference (uJ), p95 latency (us);
// for psi and input_drift (no level of one group) only the devices that reported classes
// or input moments, with no value.
struct GroupLevel {
  std::optional<double> value;
  int devices = 0;
};
GroupLevel group_level(const std::string& metric, const std::vector<DeviceStats>& devices,
                       const PoolingPolicy& pooling);

// The statistical clauses of a gate decided on the cohort (the others are left out of
// `clauses`, in order): what decide_gate says for them at this look.
GateVerdict decide_statistical_gates(const std::vector<GateClause>& clauses,
                                     const CohortStats& cohort, int look, double waited_seconds,
                                     const PoolingPolicy& pooling, const SequentialPolicy& policy);

}  // namespace tinyfleet::server::rollouts
