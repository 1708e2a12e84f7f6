#pragma once

// An operator's change to a rollout (pause, resume, promote, abort), as both the gRPC
// Rollouts service and the web console apply it: the row is locked, the transition
// table consulted, promote checks the gates on the telemetry so far, and the change is
// written to the audit log. Throws storage::StorageException: kNotFound for an unknown
// rollout, kFailedPrecondition (naming the state) for a change the table refuses.
#include <string>

#include <pqxx/pqxx>

#include "tinyfleet/server/gate_policy.h"

namespace tinyfleet::server::rollouts {

// A promote that does not evaluate the gates: the caller checked the admin role; the
// reason is required and goes to the rollout's reason and the audit log
// ("rollout.skip_gates", with the phase).
struct SkipGates {
  bool skip = false;
  std::string reason;
};

// `action` is one of "pause", "resume", "promote", "abort"; `actor` the token's name.
// Promote decides the gates with `gates`, as the engine does.
void apply_operator_action(pqxx::work& w, const std::string& name, const std::string& action,
                           const std::string& actor, const GatePolicy& gates,
                           const SkipGates& skip_gates = {});

// Whether `action` is one of the four above.
bool is_operator_action(const std::string& action);

}  // namespace tinyfleet::server::rollouts
