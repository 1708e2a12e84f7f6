#include "rollouts/states.h"

#include <array>

namespace tinyfleet::server::rollouts {

namespace {

using R = RolloutState;
using E = RolloutEvent;

constexpr std::array<R, 7> kRolloutStates = {R::kRunning,     R::kPaused,     R::kCompleted,
                                             R::kRollingBack, R::kRolledBack, R::kAborting,
                                             R::kAborted};
constexpr std::array<PhaseState, 5> kPhaseStates = {PhaseState::kPending, PhaseState::kActive,
                                                    PhaseState::kBaking, PhaseState::kPassed,
                                                    PhaseState::kFailed};
constexpr std::array<DeviceState, 6> kDeviceStates = {
    DeviceState::kPending, DeviceState::kOffered,   DeviceState::kUpdated,
    DeviceState::kFailed,  DeviceState::kReverting, DeviceState::kRolledBack};

template <class T, size_t N>
std::optional<T> parse(const std::array<T, N>& all, const std::string& s) {
  for (T x : all) {
    if (s == to_string(x)) return x;
  }
  return std::nullopt;
}

}  // namespace

const std::vector<Transition>& transitions() {
  static const std::vector<Transition> table = {
      {R::kRunning, E::kPhasePassed, R::kRunning},
      {R::kRunning, E::kLastPhasePassed, R::kCompleted},
      {R::kRunning, E::kGateFailedPause, R::kPaused},
      {R::kRunning, E::kGateFailedRollback, R::kRollingBack},
      {R::kRollingBack, E::kRevertsDone, R::kRolledBack},
      {R::kAborting, E::kRevertsDone, R::kAborted},
      {R::kRunning, E::kPause, R::kPaused},
      {R::kPaused, E::kResume, R::kRunning},
      {R::kRunning, E::kPromote, R::kRunning},
      {R::kRunning, E::kPromoteLast, R::kCompleted},
      {R::kRunning, E::kAbort, R::kAborting},
      {R::kPaused, E::kAbort, R::kAborting},
      {R::kRollingBack, E::kAbort, R::kAborting},
  };
  return table;
}

std::optional<RolloutState> next_state(RolloutState from, RolloutEvent event) {
  for (const auto& t : transitions()) {
    if (t.from == from && t.event == event) return t.to;
  }
  return std::nullopt;
}

bool by_operator(RolloutEvent event) {
  switch (event) {
    case E::kPause:
    case E::kResume:
    case E::kPromote:
    case E::kPromoteLast:
    case E::kAbort:
      return true;
    default:
      return false;
  }
}

std::string allowed_from(RolloutEvent event) {
  std::vector<std::string> from;
  for (const auto& t : transitions()) {
    if (t.event == event) from.push_back(to_string(t.from));
  }
  std::string out;
  for (size_t i = 0; i < from.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == from.size() ? " or " : ", ") + from[i];
  }
  return out;
}

bool is_final(RolloutState s) {
  return s == R::kCompleted || s == R::kRolledBack || s == R::kAborted;
}

bool is_active(RolloutState s) { return !is_final(s); }

bool is_driven(RolloutState s) {
  return s == R::kRunning || s == R::kRollingBack || s == R::kAborting;
}

const char* to_string(RolloutState s) {
  switch (s) {
    case R::kRunning:
      return "running";
    case R::kPaused:
      return "paused";
    case R::kCompleted:
      return "completed";
    case R::kRollingBack:
      return "rolling_back";
    case R::kRolledBack:
      return "rolled_back";
    case R::kAborting:
      return "aborting";
    case R::kAborted:
      return "aborted";
  }
  return "?";
}

const char* to_string(PhaseState s) {
  switch (s) {
    case PhaseState::kPending:
      return "pending";
    case PhaseState::kActive:
      return "active";
    case PhaseState::kBaking:
      return "baking";
    case PhaseState::kPassed:
      return "passed";
    case PhaseState::kFailed:
      return "failed";
  }
  return "?";
}

const char* to_string(DeviceState s) {
  switch (s) {
    case DeviceState::kPending:
      return "pending";
    case DeviceState::kOffered:
      return "offered";
    case DeviceState::kUpdated:
      return "updated";
    case DeviceState::kFailed:
      return "failed";
    case DeviceState::kReverting:
      return "reverting";
    case DeviceState::kRolledBack:
      return "rolled_back";
  }
  return "?";
}

const char* to_string(RolloutEvent e) {
  switch (e) {
    case E::kPhasePassed:
      return "phase passed";
    case E::kLastPhasePassed:
      return "last phase passed";
    case E::kGateFailedPause:
      return "gate failed (pause)";
    case E::kGateFailedRollback:
      return "gate failed (rollback)";
    case E::kRevertsDone:
      return "reverts done";
    case E::kPause:
      return "pause";
    case E::kResume:
      return "resume";
    case E::kPromote:
    case E::kPromoteLast:
      return "promote";
    case E::kAbort:
      return "abort";
  }
  return "?";
}

std::optional<RolloutState> rollout_state_from(const std::string& s) {
  return parse(kRolloutStates, s);
}
std::optional<PhaseState> phase_state_from(const std::string& s) { return parse(kPhaseStates, s); }
std::optional<DeviceState> device_state_from(const std::string& s) {
  return parse(kDeviceStates, s);
}

std::string sql_list(bool (*pred)(RolloutState)) {
  std::string out;
  for (R s : kRolloutStates) {
    if (!pred(s)) continue;
    out += std::string(out.empty() ? "(" : ", ") + "'" + to_string(s) + "'";
  }
  return out + ")";
}

}  // namespace tinyfleet::server::rollouts
