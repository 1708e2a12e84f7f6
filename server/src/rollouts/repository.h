#pragma once

// The one place with the SQL for rollouts, rollout_phases, rollout_devices and
// device_offers. Functions over a caller's transaction. Every state change is a
// compare-and-set on the state the caller read (UPDATE ... WHERE state = expected) and
// returns whether it won; a lost one writes nothing, so an Abort or Pause committed
// while the engine was deciding is never overwritten.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "rollouts/gates.h"
#include "rollouts/selection.h"
#include "rollouts/states.h"
#include "rollouts/status_report.h"

namespace tinyfleet::server::rollouts::repo {

// ---- the leader lease (migration 0014) ----

// Leadership's epoch: increments rollout_lease.epoch and returns the new value (called by
// a replica that just took the advisory lock, in a transaction of its own).
int64_t take_lease(pqxx::work& w);
// Takes the lease row FOR SHARE and checks that its epoch is still `epoch`; if not (a newer
// leader took over) throws storage::StorageException (kFailedPrecondition, a message
// starting with kFenced), so nothing of the caller's transaction commits. Every leader
// write calls it first in its transaction.
void hold_lease(pqxx::work& w, int64_t epoch);
inline constexpr const char* kFenced = "fenced: ";

// ---- reading a rollout ----

// A rollout as the engine steps it.
struct Driven {
  int64_t id = 0;
  std::string name, fleet, gates, on_failure, reason, model;
  RolloutState state = RolloutState::kRunning;
  int rate = 0, phase = 0, phases = 0;
  int64_t version_id = 0;
  uint32_t version = 0;
};
// Rollouts in a state the engine steps (is_driven), oldest first.
std::vector<Driven> driven(pqxx::work& w);

// A rollout locked for an operator's change (SELECT ... FOR UPDATE).
struct Head {
  int64_t id = 0;
  RolloutState state = RolloutState::kRunning;
  int phase = 0, phases = 0;
  std::string gates;
};
std::optional<Head> lock_by_name(pqxx::work& w, const std::string& name);

// Takes a share lock on the rollout row and says whether it is (still) in `expected`:
// an offer stored in this transaction then commits before any Abort or Pause, or not
// at all.
bool hold_if(pqxx::work& w, int64_t id, RolloutState expected);

PhaseCounts phase_counts(pqxx::work& w, int64_t id, int phase);

struct PhaseClock {
  PhaseState state = PhaseState::kPending;
  int bake_seconds = 0;
  double baking_for = -1;  // seconds since the phase settled; -1 while not baking
};
PhaseClock phase_clock(pqxx::work& w, int64_t id, int phase);

// Sets a running rollout's reason (what it waits for), leaving everything else.
bool note_reason(pqxx::work& w, int64_t id, const std::string& reason);

// One evaluation of the phase's gates for the history (rollout_gate_history). The engine
// records one at most every kGateHistorySeconds per rollout, and every decisive one.
constexpr double kGateHistorySeconds = 10;
void record_gates(pqxx::work& w, int64_t id, int phase, bool decision,
                  const std::string& gate_report_json);

// ---- rollout state changes (compare-and-set) ----

// `event` from `expected` (as the transition table allows), with a reason.
bool change_state(pqxx::work& w, int64_t id, RolloutState expected, RolloutEvent event,
                  const std::string& reason);
// Promotion, written once: phase `phase` of a running rollout passed (the engine's
// gates) or was promoted (an operator); the next phase becomes active, or the rollout
// completes after the last. False when the rollout is no longer running that phase.
bool finish_phase(pqxx::work& w, int64_t id, int phase, int phases, bool by_operator,
                  const std::string& reason);
// A gate failed in `phase`: the rollout pauses or rolls back and the phase is failed.
bool fail_phase(pqxx::work& w, int64_t id, int phase, RolloutEvent event,
                const std::string& reason);
// Paused -> running; a phase failed by a gate becomes active again and bakes again.
bool resume(pqxx::work& w, int64_t id, int phase, const std::string& reason);
// The current phase settled: active -> baking (only while the rollout runs that phase).
bool start_baking(pqxx::work& w, int64_t id, int phase);
// Reason and latest gate results of a running rollout.
bool note_gates(pqxx::work& w, int64_t id, const std::string& reason,
                const std::string& gate_report_json);

// ---- creating and showing ----

struct NewRollout {
  std::string name, fleet, selector_json, gates_text, on_failure;
  int64_t version_id = 0;
  int rate_per_minute = 0;
  std::vector<std::pair<int, int>> phases;  // (cumulative percent, bake seconds)
};
bool exists(pqxx::work& w, const std::string& name);
// The first of `devices` (by id) that is in an active rollout, and that rollout's name.
std::optional<std::pair<std::string, std::string>> first_taken(
    pqxx::work& w, const std::set<std::string>& devices);
// Stores the rollout (running, phase 0 active) and its devices (pending, active) with the
// target artifact of each device's class. A device that is active in another rollout
// makes it throw a unique violation naming kOneActiveRolloutIndex (migration 0010).
int64_t insert(pqxx::transaction_base& w, const NewRollout& r,
               const std::vector<Placement>& devices,
               const std::map<std::string, std::string>& artifact_of_class);
inline constexpr const char* kOneActiveRolloutIndex = "rollout_devices_one_active";

struct PhaseView {
  int index = 0, percent = 0, bake_seconds = 0;
  std::string state;
  int devices = 0, admitted = 0, updated = 0, failed = 0, reporting = 0;
};
struct View {
  std::string name, model, state, reason, gates, on_failure, gate_report_json, created_at;
  uint32_t version = 0;
  int current_phase = 0, rate_per_minute = 0, selected = 0, rolled_back = 0;
  std::vector<PhaseView> phases;
};
std::optional<View> view(pqxx::work& w, const std::string& name);
// One page of rollout names, oldest first: those after the rollout id `after` (0: from
// the start), at most `limit`; next_page_token is empty on the last page (api_input.h).
struct NamesPage {
  std::vector<std::string> names;
  std::string next_page_token;
};
NamesPage names(pqxx::work& w, bool active_only, int64_t after, int limit);

// ---- devices ----

// One device to send an offer to, with what the offer needs (the offer builder reads the
// class and the target's typed compile outputs itself).
struct OfferTarget {
  std::string device, device_class, current, target, model;
  uint32_t version = 0;
};
// Up to `n` pending devices of phases 0..phase, in rank order; rows another transaction
// holds (a replica storing their offers) are skipped (FOR UPDATE SKIP LOCKED).
std::vector<OfferTarget> pending(pqxx::work& w, const Driven& r, int n);
// Up to 200 devices that got the new model or its offer, with their previous artifact
// (`target`, empty when they had none) as what to return to.
std::vector<OfferTarget> to_revert(pqxx::work& w, int64_t id);
// updated -> rolled_back for devices that ran the target before the rollout (nothing was
// sent to them, so nothing is to undo). Returns how many.
int settle_unchanged(pqxx::work& w, int64_t id);
// Devices still on their way back (offered, updated or reverting).
int unreverted(pqxx::work& w, int64_t id);

// pending -> updated: the device already runs the target.
bool mark_updated_in_place(pqxx::work& w, int64_t id, const std::string& device,
                           const std::string& current);
// pending (admitting) or offered/updated (reverting) -> failed: no offer could be built.
bool mark_unofferable(pqxx::work& w, int64_t id, const std::string& device, bool reverting,
                      const std::string& error);
// offered/updated -> rolled_back: there is no previous model to return to.
bool mark_nothing_to_revert(pqxx::work& w, int64_t id, const std::string& device);
// pending -> offered (or offered/updated -> reverting) and the offer stored as what the
// device holds; nothing is stored when the device was not in the expected state.
struct StoredOffer {
  uint64_t release = 0;
  std::string target, base, payload_sha256, offer;
};
bool record_offer(pqxx::work& w, int64_t id, const std::string& device, bool reverting,
                  const StoredOffer& o);

// A device refusing its offer because of the offer's base is offered again from what
// it reported, this many times at most; then it fails ("refused N times: ...").
inline constexpr int kMaxBaseRefusals = 3;

// Applies one status report of `device` to the devices table and its rollout rows;
// `latest` says it is the device's last report in the batch (earlier ones count only for
// refusals and rollbacks). Returns how many rollout rows changed.
int apply_status(pqxx::work& w, const std::string& fleet, const std::string& device,
                 const StatusReport& s, bool latest);

// Offers of active rollouts that devices have not answered yet; `unpublished_only`: of
// those, the ones the broker has not acknowledged yet (the outbox, migration 0019), skipping
// rows another transaction holds (FOR UPDATE SKIP LOCKED); `published_before_s` > 0: of
// those, the ones the broker acknowledged at least that many seconds ago.
struct Outstanding {
  std::string device, fleet, offer, payload_sha256;
  uint64_t release = 0;
};
std::vector<Outstanding> outstanding(pqxx::work& w, bool unpublished_only = false,
                                     int64_t published_before_s = 0);
// The broker acknowledged (PUBACK) the retained offers (device, release): they leave the
// outbox. An offer replaced in the meantime by a newer release stays. Returns how many.
int mark_published(pqxx::work& w, const std::vector<std::pair<std::string, uint64_t>>& acked);
// The payload (blob sha256) of `device`'s outstanding offer of `release` in an active
// rollout; nullopt when there is none.
std::optional<std::string> offered_payload(pqxx::work& w, const std::string& device,
                                           uint64_t release);

}  // namespace tinyfleet::server::rollouts::repo
