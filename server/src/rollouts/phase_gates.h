#pragma once

// A phase's gates decided as a whole (pure): the device-count clauses (failure_rate,
// min_reporting; gates.h) on the phase's counts, every other clause with the gate
// statistics on the cohort's per-device statistics (gate_metric_statistics.h), and the
// gate report the engine stores (rollout_gate_history, rollouts.gate_report) and fleetctl
// and the console show. The engine's looks, the baking-time history and an operator's
// Promote all decide here, so they agree.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rollouts/gate_metric_statistics.h"
#include "rollouts/gates.h"
#include "tinyfleet/server/gate_expression.h"
#include "tinyfleet/server/gate_policy.h"

namespace tinyfleet::server::rollouts {

PoolingPolicy pooling_policy(const GatePolicy& g);
SequentialPolicy sequential_policy(const GatePolicy& g);

// The look due `waited_seconds` after the bake ended: 1 at its end, then one more every
// max_wait / (max_looks - 1), the last (max_looks) at max_wait.
int look_due(double waited_seconds, const GatePolicy& g);

// A min_reporting quorum not reached yet waits this long past the bake, then fails.
inline constexpr double kQuorumGraceSeconds = 120;

struct PhaseGates {
  Verdict verdict = Verdict::kPass;
  bool timed_out = false;
  // kFail: "gate 'accuracy_drop <= 0.1' failed in phase 0: ..."; kWait: the metrics
  // waited for; kPass: empty.
  std::string reason;
  // One object per clause: metric, op, threshold, value, lo, hi, known, passed, verdict
  // ("pass"|"fail"|"wait"), timed_out, canary {value, devices}, reference {group, value,
  // devices} (absent for metrics of the canary alone).
  nlohmann::json report = nlohmann::json::array();
  // Per clause, what it says ("0.25 [0.2, 0.3] at 99% over 19+ devices").
  std::vector<std::string> details;
};

// Every clause at look `look` (0: while baking, never a timeout), `waited_seconds` after
// the bake ended.
PhaseGates decide_phase(const std::vector<GateClause>& clauses, const PhaseCounts& p,
                        const CohortStats& cohort, int phase, int look, double waited_seconds,
                        const GatePolicy& policy);

// For an operator's Promote: every clause must pass now (with the statistics'
// confidence); the reason names the first that does not ("has no data yet", or "does
// not pass: <value and interval>").
std::optional<std::string> promote_refusal(const std::vector<GateClause>& clauses,
                                           const PhaseCounts& p, const CohortStats& cohort,
                                           const GatePolicy& policy);

}  // namespace tinyfleet::server::rollouts
