#pragma once

// The gate metrics (gate_metrics(), gates.h's gate_metric_values names) on the gate
// statistics: what the engine calls to decide a phase's gates from per-device statistics
// once the telemetry repository reads them, instead of CohortTelemetry's averages.
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
// and stay with gates.h (early_failure, settled, decide).
bool statistical_metric(const std::string& metric);

// The estimates of one metric (one per input channel for input_drift; empty when the
// metric is not statistical). Comparisons take the control group as the reference when
// at least `min_devices` of it reported the metric, else the baseline devices.
std::vector<Estimate> metric_estimates(const std::string& metric, const CohortStats& cohort,
                                       const PoolingPolicy& pooling, int min_devices);

// The statistical clauses of a gate decided on the cohort (the others are left out of
// `clauses`, in order): what decide_gate says for them at this look.
GateVerdict decide_statistical_gates(const std::vector<GateClause>& clauses,
                                     const CohortStats& cohort, int look, double waited_seconds,
                                     const PoolingPolicy& pooling, const SequentialPolicy& policy);

}  // namespace tinyfleet::server::rollouts
