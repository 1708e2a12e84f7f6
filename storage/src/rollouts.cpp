#include "tinyfleet/storage/rollouts.h"

#include "sql.h"
#include "tinyfleet/storage/devices.h"
#include "tinyfleet/storage/models.h"

namespace tinyfleet::storage::rollouts {

namespace {
const sql::Statement kCreate{
    "rollouts.create",
    "INSERT INTO rollouts (name, version_id, selector, gates, on_gate_failure, rate_per_minute) "
    "VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6) ON CONFLICT (name) DO NOTHING RETURNING id"};
const sql::Statement kAddPhase{
    "rollouts.add_phase",
    "INSERT INTO rollout_phases (rollout_id, idx, percent, bake_seconds) VALUES ($1, $2, $3, $4)"};
const sql::Statement kGet{"rollouts.get",
                          "SELECT id, name, version_id, selector::text, gates::text, "
                          "on_gate_failure, rate_per_minute, state, current_phase, reason, " TF_TS(
                              "created_at") " FROM rollouts WHERE id = $1"};
const sql::Statement kList{"rollouts.list",
                           "SELECT id FROM rollouts WHERE NOT $1 OR state IN ('created', "
                           "'running', 'paused') ORDER BY id"};
const sql::Statement kPhases{
    "rollouts.phases",
    "SELECT idx, percent, bake_seconds, state, admitted, updated, failed, "
    "CASE WHEN started_at IS NULL THEN NULL ELSE " TF_TS("started_at") " END "
    "FROM rollout_phases WHERE rollout_id = $1 ORDER BY idx"};
const sql::Statement kSetState{
    "rollouts.set_state",
    "UPDATE rollouts SET state = $2, reason = $3, updated_at = now() WHERE id = $1"};
const sql::Statement kSetPhaseState{
    "rollouts.set_phase_state",
    "UPDATE rollout_phases SET state = $3, started_at = CASE WHEN $3 = 'active' AND started_at "
    "IS NULL THEN now() ELSE started_at END WHERE rollout_id = $1 AND idx = $2"};
const sql::Statement kSetCurrentPhase{
    "rollouts.set_current_phase",
    "UPDATE rollouts SET current_phase = $2, updated_at = now() WHERE id = $1"};
const sql::Statement kAdmit{
    "rollouts.admit",
    "INSERT INTO rollout_devices (rollout_id, device_id, phase, state) "
    "VALUES ($1, $2, $3, 'admitted') ON CONFLICT DO NOTHING RETURNING phase"};
const sql::Statement kCountAdmitted{
    "rollouts.count_admitted",
    "UPDATE rollout_phases SET admitted = admitted + 1 WHERE rollout_id = $1 AND idx = $2"};
// The WHERE on the old state makes the change conditional: under READ COMMITTED
// a second writer waits for the first, re-reads the row, and finds it moved on.
const sql::Statement kTransition{
    "rollouts.transition",
    "UPDATE rollout_devices SET state = $4, error = $5, updated_at = now() "
    "WHERE rollout_id = $1 AND device_id = $2 AND state = $3 RETURNING phase"};
const sql::Statement kAdjustCounters{
    "rollouts.adjust_counters",
    "UPDATE rollout_phases SET updated = updated + $3, failed = failed + $4 "
    "WHERE rollout_id = $1 AND idx = $2"};
const sql::Statement kDevices{"rollouts.devices",
                              "SELECT rollout_id, device_id, phase, state, error FROM "
                              "rollout_devices WHERE rollout_id = $1 ORDER BY device_id"};

int counter_delta(const std::string& state, const char* counted) {
  return state == counted ? 1 : 0;
}

void require_updated(const pqxx::result& r, int64_t id) {
  if (r.affected_rows() == 0) {
    fail(ErrorCode::kNotFound, "rollout " + std::to_string(id) + " does not exist");
  }
}
}  // namespace

RolloutRecord create(pqxx::work& w, const NewRollout& r) {
  if (r.name.empty()) fail(ErrorCode::kInvalidArgument, "rollout name is empty");
  if (r.phases.empty()) fail(ErrorCode::kInvalidArgument, "rollout needs at least one phase");
  int32_t previous = 0;
  for (const auto& p : r.phases) {
    if (p.percent <= previous || p.percent > 100) {
      fail(ErrorCode::kInvalidArgument, "phase percents must increase within 1..100, got " +
                                            std::to_string(p.percent) + " after " +
                                            std::to_string(previous));
    }
    if (p.bake_seconds < 0) fail(ErrorCode::kInvalidArgument, "bake time must not be negative");
    previous = p.percent;
  }
  if (previous != 100) fail(ErrorCode::kInvalidArgument, "the last phase must reach 100 percent");
  if (r.on_gate_failure != "rollback" && r.on_gate_failure != "pause") {
    fail(ErrorCode::kInvalidArgument,
         "on_gate_failure must be 'rollback' or 'pause', got '" + r.on_gate_failure + "'");
  }
  if (r.rate_per_minute < 1) fail(ErrorCode::kInvalidArgument, "rate_per_minute must be >= 1");
  models::get_version_by_id(w, r.version_id);
  auto rows = sql::run(w, kCreate, r.name, r.version_id, r.selector_json, r.gates_json,
                       r.on_gate_failure, r.rate_per_minute);
  if (rows.empty()) fail(ErrorCode::kAlreadyExists, "rollout '" + r.name + "' already exists");
  const auto id = rows[0][0].as<int64_t>();
  for (size_t i = 0; i < r.phases.size(); ++i) {
    sql::run(w, kAddPhase, id, static_cast<int32_t>(i), r.phases[i].percent,
             r.phases[i].bake_seconds);
  }
  return get(w, id);
}

RolloutRecord get(pqxx::work& w, int64_t id) {
  auto rows = sql::run(w, kGet, id);
  if (rows.empty()) fail(ErrorCode::kNotFound, "rollout " + std::to_string(id) + " does not exist");
  const auto& row = rows[0];
  RolloutRecord r;
  r.id = row[0].as<int64_t>();
  r.name = row[1].as<std::string>();
  r.version_id = row[2].as<int64_t>();
  r.selector_json = row[3].as<std::string>();
  r.gates_json = row[4].as<std::string>();
  r.on_gate_failure = row[5].as<std::string>();
  r.rate_per_minute = row[6].as<int32_t>();
  r.state = row[7].as<std::string>();
  r.current_phase = row[8].as<int32_t>();
  r.reason = row[9].as<std::string>();
  r.created_at = row[10].as<std::string>();
  for (const auto& p : sql::run(w, kPhases, id)) {
    RolloutPhaseRecord phase;
    phase.index = p[0].as<int32_t>();
    phase.percent = p[1].as<int32_t>();
    phase.bake_seconds = p[2].as<int32_t>();
    phase.state = p[3].as<std::string>();
    phase.admitted = p[4].as<int32_t>();
    phase.updated = p[5].as<int32_t>();
    phase.failed = p[6].as<int32_t>();
    phase.started_at = sql::opt_string(p[7]);
    r.phases.push_back(phase);
  }
  return r;
}

std::vector<RolloutRecord> list(pqxx::work& w, bool active_only) {
  std::vector<RolloutRecord> out;
  for (const auto& row : sql::run(w, kList, active_only))
    out.push_back(get(w, row[0].as<int64_t>()));
  return out;
}

void set_state(pqxx::work& w, int64_t id, const std::string& state, const std::string& reason) {
  require_updated(sql::run(w, kSetState, id, state, reason), id);
}

void set_phase_state(pqxx::work& w, int64_t id, int32_t phase, const std::string& state) {
  auto r = sql::run(w, kSetPhaseState, id, phase, state);
  if (r.affected_rows() == 0) {
    fail(ErrorCode::kNotFound,
         "rollout " + std::to_string(id) + " has no phase " + std::to_string(phase));
  }
}

void set_current_phase(pqxx::work& w, int64_t id, int32_t phase) {
  require_updated(sql::run(w, kSetCurrentPhase, id, phase), id);
}

void admit_device(pqxx::work& w, int64_t rollout_id, const std::string& device_id, int32_t phase) {
  devices::get(w, device_id);
  if (sql::run(w, kAdmit, rollout_id, device_id, phase).empty()) {
    fail(ErrorCode::kAlreadyExists,
         "device '" + device_id + "' is already in rollout " + std::to_string(rollout_id));
  }
  sql::run(w, kCountAdmitted, rollout_id, phase);
}

bool transition_device(pqxx::work& w, int64_t rollout_id, const std::string& device_id,
                       const std::string& from, const std::string& to, const std::string& error) {
  auto r = sql::run(w, kTransition, rollout_id, device_id, from, to, error);
  if (r.empty()) return false;
  const auto phase = r[0][0].as<int32_t>();
  const int updated = counter_delta(to, "updated") - counter_delta(from, "updated");
  const int failed = counter_delta(to, "failed") - counter_delta(from, "failed");
  if (updated != 0 || failed != 0) {
    sql::run(w, kAdjustCounters, rollout_id, phase, updated, failed);
  }
  return true;
}

std::vector<RolloutDeviceRecord> devices(pqxx::work& w, int64_t rollout_id) {
  std::vector<RolloutDeviceRecord> out;
  for (const auto& r : sql::run(w, kDevices, rollout_id)) {
    out.push_back({r[0].as<int64_t>(), r[1].as<std::string>(), r[2].as<int32_t>(),
                   r[3].as<std::string>(), r[4].as<std::string>()});
  }
  return out;
}

}  // namespace tinyfleet::storage::rollouts
