#include "rollouts/operator_actions.h"

#include <nlohmann/json.hpp>

#include "rollouts/phase_gates.h"
#include "rollouts/repository.h"
#include "rollouts/states.h"
#include "rollouts/telemetry_stats.h"
#include "tinyfleet/server/gate_expression.h"
#include "tinyfleet/storage/repositories.h"

namespace tinyfleet::server::rollouts {

using storage::ErrorCode;
using storage::StorageException;

bool is_operator_action(const std::string& action) {
  return action == "pause" || action == "resume" || action == "promote" || action == "abort";
}

void apply_operator_action(pqxx::work& w, const std::string& name, const std::string& act,
                           const std::string& actor, const GatePolicy& gates,
                           const SkipGates& skip_gates) {
  const auto head = repo::lock_by_name(w, name);
  if (!head) {
    throw StorageException({ErrorCode::kNotFound, "rollout '" + name + "' does not exist"});
  }
  const bool last = head->phase + 1 >= head->phases;
  const RolloutEvent event = act == "pause"    ? RolloutEvent::kPause
                             : act == "resume" ? RolloutEvent::kResume
                             : act == "abort"  ? RolloutEvent::kAbort
                             : last            ? RolloutEvent::kPromoteLast
                                               : RolloutEvent::kPromote;
  const auto refuse = [&](const std::string& why) {
    throw StorageException({ErrorCode::kFailedPrecondition, why});
  };
  if (!next_state(head->state, event)) {
    refuse("rollout '" + name + "' is " + to_string(head->state) + "; " + act + " needs it " +
           allowed_from(event));
  }
  const std::string by = " by " + actor;
  bool won = false;
  if (event == RolloutEvent::kResume) {
    won = repo::resume(w, head->id, head->phase, "resumed" + by);
  } else if (event == RolloutEvent::kPromote || event == RolloutEvent::kPromoteLast) {
    // Promote finishes the current phase now, if its gates pass on the telemetry so far
    // (or, by an admin with a reason, without evaluating them).
    if (!skip_gates.skip) {
      auto clauses = parse_gates(head->gates);
      if (!clauses) refuse("the rollout's gates do not parse: " + clauses.error().message);
      const auto counts = repo::phase_counts(w, head->id, head->phase);
      const auto cohort = telemetry_stats::cohort(w, head->id, head->phase, cohort_need(*clauses));
      if (auto why = promote_refusal(*clauses, counts, cohort, gates)) {
        refuse("rollout '" + name + "' phase " + std::to_string(head->phase) +
               " cannot be promoted: " + *why);
      }
    }
    won = repo::finish_phase(w, head->id, head->phase, head->phases, /*by_operator=*/true,
                             (last ? "last phase" : "phase " + std::to_string(head->phase)) +
                                 " promoted" + by +
                                 (skip_gates.skip ? ", gates skipped: " + skip_gates.reason : ""));
  } else {
    won = repo::change_state(w, head->id, head->state, event,
                             (event == RolloutEvent::kAbort ? "aborted" : "paused") + by);
  }
  // The row is locked, so the compare-and-set cannot lose; if it did, say so.
  if (!won) refuse("rollout '" + name + "' changed while " + act + " ran; try again");
  if (skip_gates.skip) {
    storage::audit_log::append(
        w, {actor, "rollout.skip_gates", "rollout/" + name,
            nlohmann::json{{"phase", head->phase}, {"reason", skip_gates.reason}}.dump()});
  } else {
    storage::audit_log::append(w, {actor, "rollout." + act, "rollout/" + name, "{}"});
  }
}

}  // namespace tinyfleet::server::rollouts
