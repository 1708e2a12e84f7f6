#pragma once

// The states of a rollout, of its phases and of its devices, with the exact strings the
// database's CHECK constraints use (storage/migrations/0005_rollout_states.sql), and the
// one table of which rollout state may follow which, and by what. The engine and the
// operator commands (gRPC Pause, Resume, Promote, Abort) both consult it.
#include <optional>
#include <string>
#include <vector>

namespace tinyfleet::server::rollouts {

enum class RolloutState {
  kRunning,      // admitting devices of the current phase, baking, evaluating gates
  kPaused,       // nothing admitted; by an operator or a failed gate (on_gate_failure=pause)
  kCompleted,    // every phase passed (or was promoted)
  kRollingBack,  // a gate failed: updated and offered devices are sent their old model
  kRolledBack,   // final: every such device is back
  kAborting,     // an operator aborted: the same return to the old model
  kAborted,      // final: every such device is back
};

enum class PhaseState { kPending, kActive, kBaking, kPassed, kFailed };

enum class DeviceState { kPending, kOffered, kUpdated, kFailed, kReverting, kRolledBack };

// What moves a rollout from one state to another.
enum class RolloutEvent {
  // by the engine
  kPhasePassed,         // gates passed, a next phase exists (state unchanged)
  kLastPhasePassed,     // gates passed on the last phase
  kGateFailedPause,     // on_gate_failure = pause
  kGateFailedRollback,  // on_gate_failure = rollback
  kRevertsDone,         // every device that got the new model is back on the old one
  // by an operator
  kPause,
  kResume,
  kPromote,      // finish the current phase now (a next phase exists)
  kPromoteLast,  // finish the last phase now
  kAbort,
};

struct Transition {
  RolloutState from;
  RolloutEvent event;
  RolloutState to;
};

// Every allowed transition; anything not listed is refused.
const std::vector<Transition>& transitions();

// The state `event` moves `from` to, or nothing when the table does not allow it.
std::optional<RolloutState> next_state(RolloutState from, RolloutEvent event);

bool by_operator(RolloutEvent event);
// The states an event is allowed from, for messages: "running" or "running, paused or ...".
std::string allowed_from(RolloutEvent event);

bool is_final(RolloutState s);
// Rollouts whose devices are taken (a device is in at most one of them).
bool is_active(RolloutState s);
// Rollouts the engine steps each tick.
bool is_driven(RolloutState s);

const char* to_string(RolloutState s);
const char* to_string(PhaseState s);
const char* to_string(DeviceState s);
const char* to_string(RolloutEvent e);
std::optional<RolloutState> rollout_state_from(const std::string& s);
std::optional<PhaseState> phase_state_from(const std::string& s);
std::optional<DeviceState> device_state_from(const std::string& s);

// The states for which `pred` holds, as a SQL list: ('running', 'paused').
std::string sql_list(bool (*pred)(RolloutState));

}  // namespace tinyfleet::server::rollouts
