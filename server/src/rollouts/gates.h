#pragma once

// Gate evaluation as pure functions: what the phase's devices and the cohort's telemetry
// say (plain values, read by the repository), the gate clauses, and the decision.
// No database here, so the statistics can change (per-device aggregation, confidence)
// without touching the engine.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tinyfleet/server/gate_expression.h"

namespace tinyfleet::server::rollouts {

// Devices of this and earlier phases, by state.
struct PhaseCounts {
  int pending = 0, offered = 0, updated = 0, failed = 0, total = 0;
  int finished() const { return updated + failed; }
};

// The cohort (devices of this and earlier phases that updated) and its telemetry on the
// new artifact after updating ("new"), against the rollout's devices on other artifacts
// ("old"). Absent: nobody reported it.
struct CohortTelemetry {
  int cohort = 0;     // updated devices
  int reporting = 0;  // of them, devices that sent telemetry on the new artifact
  std::optional<double> psi, input_drift, accuracy_new, accuracy_old, energy_new, energy_old,
      latency_p95_new, latency_p95_old, shadow_agreement;
};

// The value of each gate metric (gate_metrics()) for these inputs; absent when unknown.
std::map<std::string, std::optional<double>> gate_metric_values(const PhaseCounts& p,
                                                                const CohortTelemetry& t);

// "accuracy_drop <= 0.15"
std::string gate_text(const GateClause& c);

// A failure gate decides as soon as devices fail, without waiting for the bake: the
// reason when a failure_rate clause fails on the devices finished so far.
std::optional<std::string> early_failure(const std::vector<GateClause>& clauses,
                                         const PhaseCounts& p, int phase);

// Every device of the phase is in, and enough finished (all, or the min_reporting share).
bool settled(const std::vector<GateClause>& clauses, const PhaseCounts& p);

struct GateDecision {
  enum Kind { kPass, kWait, kFail } kind = kPass;
  std::string reason;  // kFail: the first failing gate; kWait: the metrics waited for
  std::vector<GateResultValue> results;
};

// At the end of the bake: pass, wait for data (an unknown metric; a min_reporting quorum
// not reached yet, for up to `quorum_grace_seconds` past the bake), or fail naming the
// first failing gate.
GateDecision decide(const std::vector<GateClause>& clauses, const PhaseCounts& p,
                    const CohortTelemetry& t, int phase, double baking_for, int bake_seconds,
                    double quorum_grace_seconds = 120);

// For an operator's Promote: every gate must pass on the telemetry so far; a gate without
// data counts as not passed. The reason names the first gate that does not pass.
std::optional<std::string> promote_refusal(const std::vector<GateClause>& clauses,
                                           const PhaseCounts& p, const CohortTelemetry& t);

}  // namespace tinyfleet::server::rollouts
