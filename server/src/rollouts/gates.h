#pragma once

// The device-count side of the gates as pure functions: a phase's devices by state,
// failures deciding before the bake, and when a phase has settled. The telemetry
// clauses decide with the gate statistics (phase_gates.h).
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

// "accuracy_drop <= 0.15"
std::string gate_text(const GateClause& c);

// A failure gate decides as soon as devices fail, without waiting for the bake: the
// reason when a failure_rate clause fails on the devices finished so far.
std::optional<std::string> early_failure(const std::vector<GateClause>& clauses,
                                         const PhaseCounts& p, int phase);

// Every device of the phase is in, and enough finished (all, or the min_reporting share).
bool settled(const std::vector<GateClause>& clauses, const PhaseCounts& p);

}  // namespace tinyfleet::server::rollouts
