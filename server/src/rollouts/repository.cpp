#include "rollouts/repository.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "rollouts/api_input.h"
#include "rollouts/offer_batch.h"
#include "tinyfleet/storage/array_literal.h"
#include "tinyfleet/storage/error.h"

namespace tinyfleet::server::rollouts::repo {

namespace {

using R = RolloutState;
using D = DeviceState;

const char* s(R x) { return to_string(x); }
const char* s(D x) { return to_string(x); }
const char* s(PhaseState x) { return to_string(x); }

// Rollout rows a device report may change: those of active rollouts.
std::string in_active() {
  return "rollout_id IN (SELECT id FROM rollouts WHERE state IN " + sql_list(is_active) + ")";
}

R state_of(const pqxx::field& f) {
  const auto st = rollout_state_from(f.as<std::string>());
  if (!st) throw std::runtime_error("unknown rollout state '" + f.as<std::string>() + "'");
  return *st;
}

// A rollout that reached a final state holds its devices no more (the partial unique
// index of migration 0010 counts only active rows).
void release_devices_if_final(pqxx::work& w, int64_t id, R to) {
  if (!is_final(to)) return;
  w.exec_params("UPDATE rollout_devices SET active = false WHERE rollout_id = $1 AND active", id);
}

}  // namespace

int64_t take_lease(pqxx::work& w) {
  return w
      .exec1(
          "UPDATE rollout_lease SET epoch = epoch + 1, taken_at = now() WHERE id = 1 "
          "RETURNING epoch")[0]
      .as<int64_t>();
}

void hold_lease(pqxx::work& w, int64_t epoch) {
  const int64_t now =
      w.exec1("SELECT epoch FROM rollout_lease WHERE id = 1 FOR SHARE")[0].as<int64_t>();
  if (now == epoch) return;
  throw storage::StorageException({storage::ErrorCode::kFailedPrecondition,
                                   std::string(kFenced) + "this replica's leader epoch is " +
                                       std::to_string(epoch) + ", the lease's is " +
                                       std::to_string(now)});
}

std::vector<Driven> driven(pqxx::work& w) {
  std::vector<Driven> out;
  for (const auto& row :
       w.exec("SELECT r.id, r.name, r.fleet, r.state, COALESCE(r.gates->>'text', ''), "
              "r.on_gate_failure, r.reason, m.name, r.rate_per_minute, r.current_phase, "
              "(SELECT count(*) FROM rollout_phases p WHERE p.rollout_id = r.id), r.version_id, "
              "v.version FROM rollouts r JOIN model_versions v ON v.id = r.version_id "
              "JOIN models m ON m.id = v.model_id WHERE r.state IN " +
              sql_list(is_driven) + " ORDER BY r.id")) {
    Driven a;
    a.id = row[0].as<int64_t>();
    a.name = row[1].as<std::string>();
    a.fleet = row[2].as<std::string>();
    a.state = state_of(row[3]);
    a.gates = row[4].as<std::string>();
    a.on_failure = row[5].as<std::string>();
    a.reason = row[6].as<std::string>();
    a.model = row[7].as<std::string>();
    a.rate = row[8].as<int>();
    a.phase = row[9].as<int>();
    a.phases = row[10].as<int>();
    a.version_id = row[11].as<int64_t>();
    a.version = row[12].as<uint32_t>();
    out.push_back(a);
  }
  return out;
}

std::optional<Head> lock_by_name(pqxx::work& w, const std::string& name) {
  const auto rows = w.exec_params(
      "SELECT id, state, current_phase, (SELECT count(*) FROM rollout_phases p WHERE "
      "p.rollout_id = r.id), COALESCE(gates->>'text', '') FROM rollouts r WHERE name = $1 "
      "FOR UPDATE",
      name);
  if (rows.empty()) return std::nullopt;
  Head h;
  h.id = rows[0][0].as<int64_t>();
  h.state = state_of(rows[0][1]);
  h.phase = rows[0][2].as<int>();
  h.phases = rows[0][3].as<int>();
  h.gates = rows[0][4].as<std::string>();
  return h;
}

bool hold_if(pqxx::work& w, int64_t id, RolloutState expected) {
  const auto rows = w.exec_params("SELECT state FROM rollouts WHERE id = $1 FOR SHARE", id);
  return !rows.empty() && rows[0][0].as<std::string>() == s(expected);
}

PhaseCounts phase_counts(pqxx::work& w, int64_t id, int phase) {
  PhaseCounts p;
  for (const auto& row : w.exec_params(
           "SELECT state, count(*) FROM rollout_devices WHERE rollout_id = $1 AND phase <= $2 "
           "GROUP BY state",
           id, phase)) {
    const auto st = device_state_from(row[0].as<std::string>());
    const int n = row[1].as<int>();
    p.total += n;
    if (st == D::kPending) p.pending += n;
    if (st == D::kOffered) p.offered += n;
    if (st == D::kUpdated) p.updated += n;
    if (st == D::kFailed) p.failed += n;
  }
  return p;
}

PhaseClock phase_clock(pqxx::work& w, int64_t id, int phase) {
  const auto row = w.exec_params1(
      "SELECT bake_seconds, state, EXTRACT(EPOCH FROM now() - started_at) FROM rollout_phases "
      "WHERE rollout_id = $1 AND idx = $2",
      id, phase);
  PhaseClock c;
  c.bake_seconds = row[0].as<int>();
  c.state = phase_state_from(row[1].as<std::string>()).value_or(PhaseState::kPending);
  if (c.state == PhaseState::kBaking && !row[2].is_null()) c.baking_for = row[2].as<double>();
  return c;
}

bool change_state(pqxx::work& w, int64_t id, RolloutState expected, RolloutEvent event,
                  const std::string& reason) {
  const auto to = next_state(expected, event);
  if (!to) return false;
  const bool won =
      w.exec_params(
           "UPDATE rollouts SET state = $3, reason = $4, updated_at = now() WHERE id = $1 "
           "AND state = $2",
           id, s(expected), s(*to), reason)
          .affected_rows() == 1;
  if (won) release_devices_if_final(w, id, *to);
  return won;
}

bool finish_phase(pqxx::work& w, int64_t id, int phase, int phases, bool by_operator,
                  const std::string& reason) {
  const bool last = phase + 1 >= phases;
  const RolloutEvent event =
      by_operator ? (last ? RolloutEvent::kPromoteLast : RolloutEvent::kPromote)
                  : (last ? RolloutEvent::kLastPhasePassed : RolloutEvent::kPhasePassed);
  const auto to = next_state(R::kRunning, event);
  if (!to) return false;
  const int next = last ? phase : phase + 1;
  const bool won = w.exec_params(
                        "UPDATE rollouts SET state = $4, current_phase = $5, phase_started_at = "
                        "CASE WHEN $5 <> $3 THEN now() ELSE phase_started_at END, reason = $6, "
                        "updated_at = now() WHERE id = $1 AND state = $2 AND current_phase = $3",
                        id, s(R::kRunning), phase, s(*to), next, reason)
                       .affected_rows() == 1;
  if (!won) return false;
  release_devices_if_final(w, id, *to);
  w.exec_params("UPDATE rollout_phases SET state = $3 WHERE rollout_id = $1 AND idx = $2", id,
                phase, s(PhaseState::kPassed));
  if (!last) {
    w.exec_params(
        "UPDATE rollout_phases SET state = $3, started_at = now() WHERE rollout_id = $1 AND "
        "idx = $2",
        id, next, s(PhaseState::kActive));
  }
  return true;
}

bool fail_phase(pqxx::work& w, int64_t id, int phase, RolloutEvent event,
                const std::string& reason) {
  const auto to = next_state(R::kRunning, event);
  if (!to) return false;
  const bool won = w.exec_params(
                        "UPDATE rollouts SET state = $4, reason = $5, updated_at = now() WHERE "
                        "id = $1 AND state = $2 AND current_phase = $3",
                        id, s(R::kRunning), phase, s(*to), reason)
                       .affected_rows() == 1;
  if (!won) return false;
  w.exec_params("UPDATE rollout_phases SET state = $3 WHERE rollout_id = $1 AND idx = $2", id,
                phase, s(PhaseState::kFailed));
  return true;
}

bool resume(pqxx::work& w, int64_t id, int phase, const std::string& reason) {
  if (!change_state(w, id, R::kPaused, RolloutEvent::kResume, reason)) return false;
  w.exec_params(
      "UPDATE rollout_phases SET state = $3 WHERE rollout_id = $1 AND idx = $2 AND state = $4", id,
      phase, s(PhaseState::kActive), s(PhaseState::kFailed));
  return true;
}

bool start_baking(pqxx::work& w, int64_t id, int phase) {
  return w.exec_params(
              "UPDATE rollout_phases SET state = $3, started_at = now() WHERE rollout_id = $1 "
              "AND idx = $2 AND state = $4 AND EXISTS (SELECT 1 FROM rollouts WHERE id = $1 "
              "AND state = $5 AND current_phase = $2)",
              id, phase, s(PhaseState::kBaking), s(PhaseState::kActive), s(R::kRunning))
             .affected_rows() == 1;
}

bool note_gates(pqxx::work& w, int64_t id, const std::string& reason,
                const std::string& gate_report_json) {
  return w.exec_params(
              "UPDATE rollouts SET reason = $3, gate_report = $4::jsonb WHERE id = $1 AND "
              "state = $2",
              id, s(R::kRunning), reason, gate_report_json)
             .affected_rows() == 1;
}

bool note_reason(pqxx::work& w, int64_t id, const std::string& reason) {
  return w.exec_params(
              "UPDATE rollouts SET reason = $3 WHERE id = $1 AND state = $2 AND reason <> $3", id,
              s(R::kRunning), reason)
             .affected_rows() == 1;
}

void record_gates(pqxx::work& w, int64_t id, int phase, bool decision,
                  const std::string& gate_report_json) {
  w.exec_params(
      "INSERT INTO rollout_gate_history (rollout_id, phase, stage, report) VALUES ($1, $2, $3, "
      "$4::jsonb)",
      id, phase, decision ? "decision" : "baking", gate_report_json);
}

bool exists(pqxx::work& w, const std::string& name) {
  return !w.exec_params("SELECT 1 FROM rollouts WHERE name = $1", name).empty();
}

std::optional<std::pair<std::string, std::string>> first_taken(
    pqxx::work& w, const std::set<std::string>& devices) {
  // Only the given devices, through the one-active-rollout index (not every active row).
  const auto rows = w.exec_params(
      "SELECT rd.device_id, r.name FROM rollout_devices rd JOIN rollouts r ON r.id = "
      "rd.rollout_id WHERE rd.active AND rd.device_id IN (SELECT jsonb_array_elements_text("
      "$1::jsonb)) ORDER BY rd.device_id LIMIT 1",
      nlohmann::json(devices).dump());
  if (rows.empty()) return std::nullopt;
  return std::pair{rows[0][0].as<std::string>(), rows[0][1].as<std::string>()};
}

int64_t insert(pqxx::transaction_base& w, const NewRollout& r,
               const std::vector<Placement>& devices,
               const std::map<std::string, std::string>& artifact_of_class) {
  const int64_t id =
      w.exec_params1(
           "INSERT INTO rollouts (name, version_id, selector, gates, on_gate_failure, "
           "rate_per_minute, state, fleet, phase_started_at) VALUES ($1, $2, $3::jsonb, "
           "jsonb_build_object('text', $4::text), $5, $6, $7, $8, now()) RETURNING id",
           r.name, r.version_id, r.selector_json, r.gates_text, r.on_failure, r.rate_per_minute,
           s(R::kRunning), r.fleet)[0]
          .as<int64_t>();
  for (size_t i = 0; i < r.phases.size(); ++i) {
    w.exec_params(
        "INSERT INTO rollout_phases (rollout_id, idx, percent, bake_seconds, state, "
        "started_at) VALUES ($1, $2, $3, $4, $5, now())",
        id, static_cast<int>(i), r.phases[i].first, r.phases[i].second,
        s(i == 0 ? PhaseState::kActive : PhaseState::kPending));
  }
  pqxx::stream_to copy(w, "rollout_devices",
                       std::vector<std::string>{"rollout_id", "device_id", "phase", "state", "rank",
                                                "device_class", "target_artifact"});
  for (const auto& d : devices) {
    const auto it = artifact_of_class.find(d.device_class);
    copy << std::make_tuple(id, d.id, d.phase, s(D::kPending), d.rank, d.device_class,
                            it == artifact_of_class.end() ? std::string() : it->second);
  }
  copy.complete();
  return id;
}

std::optional<View> view(pqxx::work& w, const std::string& name) {
  const auto rows = w.exec_params(
      "SELECT r.id, r.name, m.name, v.version, r.state, r.current_phase, r.reason, "
      "COALESCE(r.gates->>'text', ''), r.on_gate_failure, r.rate_per_minute, "
      "r.gate_report::text, to_char(r.created_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM rollouts r "
      "JOIN model_versions v ON v.id = r.version_id JOIN models m ON m.id = v.model_id "
      "WHERE r.name = $1",
      name);
  if (rows.empty()) return std::nullopt;
  const auto& r = rows[0];
  const int64_t id = r[0].as<int64_t>();
  View out;
  out.name = r[1].as<std::string>();
  out.model = r[2].as<std::string>();
  out.version = r[3].as<uint32_t>();
  out.state = r[4].as<std::string>();
  out.current_phase = r[5].as<int>();
  out.reason = r[6].as<std::string>();
  out.gates = r[7].as<std::string>();
  out.on_failure = r[8].as<std::string>();
  out.rate_per_minute = r[9].as<int>();
  out.gate_report_json = r[10].as<std::string>();
  out.created_at = r[11].as<std::string>();
  for (const auto& p : w.exec_params(
           "SELECT idx, percent, bake_seconds, state FROM rollout_phases WHERE rollout_id = $1 "
           "ORDER BY idx",
           id)) {
    PhaseView x;
    x.index = p[0].as<int>();
    x.percent = p[1].as<int>();
    x.bake_seconds = p[2].as<int>();
    x.state = p[3].as<std::string>();
    out.phases.push_back(x);
  }
  const int n = static_cast<int>(out.phases.size());
  for (const auto& c :
       w.exec_params("SELECT phase, state, count(*) FROM rollout_devices WHERE rollout_id = $1 "
                     "GROUP BY phase, state",
                     id)) {
    const int phase = c[0].as<int>();
    const auto st = device_state_from(c[1].as<std::string>());
    const int k = c[2].as<int>();
    out.selected += k;
    if (st == D::kRolledBack) out.rolled_back += k;
    if (phase < 0 || phase >= n) continue;
    auto& x = out.phases[phase];
    x.devices += k;
    if (st != D::kPending) x.admitted += k;
    if (st == D::kUpdated) x.updated += k;
    if (st == D::kFailed) x.failed += k;
  }
  for (const auto& c :
       w.exec_params("SELECT rd.phase, count(DISTINCT rd.device_id) FROM rollout_devices rd "
                     "JOIN telemetry t ON t.device_id = rd.device_id AND t.artifact_sha256 = "
                     "rd.target_artifact AND t.ts >= rd.updated_at_device "
                     "WHERE rd.rollout_id = $1 AND rd.state = 'updated' GROUP BY rd.phase",
                     id)) {
    const int phase = c[0].as<int>();
    if (phase >= 0 && phase < n) out.phases[phase].reporting = c[1].as<int>();
  }
  return out;
}

NamesPage names(pqxx::work& w, bool active_only, int64_t after, int limit) {
  NamesPage page;
  int64_t last = 0;
  for (const auto& row :
       w.exec_params(std::string("SELECT id, name FROM rollouts WHERE id > $1 ") +
                         (active_only ? "AND state IN " + sql_list(is_active) + " " : "") +
                         "ORDER BY id LIMIT $2",
                     after, limit + 1)) {
    if (static_cast<int>(page.names.size()) == limit) {
      page.next_page_token = page_token(last);
      break;
    }
    last = row[0].as<int64_t>();
    page.names.push_back(row[1].as<std::string>());
  }
  return page;
}

std::vector<OfferTarget> pending(pqxx::work& w, const Driven& r, int n) {
  std::vector<OfferTarget> out;
  for (const auto& row :
       w.exec_params("SELECT rd.device_id, rd.device_class, "
                     "COALESCE(d.current_artifact_sha256, ''), rd.target_artifact "
                     "FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id "
                     "WHERE rd.rollout_id = $1 AND rd.state = 'pending' AND rd.phase <= $2 "
                     "ORDER BY rd.rank LIMIT $3 FOR UPDATE OF rd SKIP LOCKED",
                     r.id, r.phase, n)) {
    OfferTarget p;
    p.device = row[0].as<std::string>();
    p.device_class = row[1].as<std::string>();
    p.current = row[2].as<std::string>();
    p.target = row[3].as<std::string>();
    p.model = r.model;
    p.version = r.version;
    out.push_back(p);
  }
  return out;
}

std::vector<OfferTarget> to_revert(pqxx::work& w, int64_t id) {
  std::vector<OfferTarget> out;
  for (const auto& row : w.exec_params(
           "SELECT rd.device_id, rd.device_class, "
           "COALESCE(d.current_artifact_sha256, ''), COALESCE(rd.base_artifact, ''), "
           "COALESCE(b.model, ''), COALESCE(b.version, 0) "
           "FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id "
           "LEFT JOIN LATERAL (SELECT m.name AS model, v.version FROM artifacts a "
           "JOIN model_versions v ON v.id = a.version_id JOIN models m ON m.id = v.model_id "
           "WHERE a.artifact_sha256 = rd.base_artifact LIMIT 1) b ON true "
           "WHERE rd.rollout_id = $1 AND rd.state IN ('offered', 'updated') "
           "ORDER BY rd.rank LIMIT 200",
           id)) {
    OfferTarget p;
    p.device = row[0].as<std::string>();
    p.device_class = row[1].as<std::string>();
    p.current = row[2].as<std::string>();
    p.target = row[3].as<std::string>();
    p.model = row[4].as<std::string>();
    p.version = row[5].as<uint32_t>();
    out.push_back(p);
  }
  return out;
}

int settle_unchanged(pqxx::work& w, int64_t id) {
  return static_cast<int>(
      w.exec_params("UPDATE rollout_devices SET state = 'rolled_back', error = 'ran this model "
                    "before the rollout', updated_at = now() WHERE rollout_id = $1 AND state = "
                    "'updated' AND base_artifact = target_artifact",
                    id)
          .affected_rows());
}

int unreverted(pqxx::work& w, int64_t id) {
  return w
      .exec_params1(
          "SELECT count(*) FROM rollout_devices WHERE rollout_id = $1 AND state IN "
          "('offered', 'updated', 'reverting')",
          id)[0]
      .as<int>();
}

bool mark_updated_in_place(pqxx::work& w, int64_t id, const std::string& device,
                           const std::string& current) {
  return w.exec_params(
              "UPDATE rollout_devices SET state = 'updated', base_artifact = NULLIF($3, ''), "
              "updated_at_device = now(), updated_at = now() WHERE rollout_id = $1 AND "
              "device_id = $2 AND state = 'pending'",
              id, device, current)
             .affected_rows() == 1;
}

bool mark_unofferable(pqxx::work& w, int64_t id, const std::string& device, bool reverting,
                      const std::string& error) {
  return w.exec_params(std::string("UPDATE rollout_devices SET state = 'failed', error = $3, "
                                   "updated_at = now() WHERE rollout_id = $1 AND device_id = "
                                   "$2 AND state IN ") +
                           (reverting ? "('offered', 'updated')" : "('pending')"),
                       id, device, error)
             .affected_rows() == 1;
}

bool mark_nothing_to_revert(pqxx::work& w, int64_t id, const std::string& device) {
  return w.exec_params(
              "UPDATE rollout_devices SET state = 'rolled_back', error = 'no previous model "
              "to return to', updated_at = now() WHERE rollout_id = $1 AND device_id = $2 AND "
              "state IN ('offered', 'updated')",
              id, device)
             .affected_rows() == 1;
}

bool record_offer(pqxx::work& w, int64_t id, const std::string& device, bool reverting,
                  const StoredOffer& o) {
  const bool won =
      reverting ? w.exec_params(
                       "UPDATE rollout_devices SET state = 'reverting', revert_release = $3, "
                       "updated_at = now() WHERE rollout_id = $1 AND device_id = $2 AND state IN "
                       "('offered', 'updated')",
                       id, device, o.release)
                          .affected_rows() == 1
                : w.exec_params(
                       "UPDATE rollout_devices SET state = 'offered', release_seq = $3, "
                       "base_artifact = NULLIF($4, ''), offered_at = now(), updated_at = now() "
                       "WHERE rollout_id = $1 AND device_id = $2 AND state = 'pending'",
                       id, device, o.release, o.base)
                          .affected_rows() == 1;
  if (!won) return false;
  w.exec_params(
      "INSERT INTO device_offers (device_id, release_seq, rollout_id, target_artifact, "
      "payload_sha256, offer) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id) DO "
      "UPDATE SET release_seq = $2, rollout_id = $3, target_artifact = $4, "
      "payload_sha256 = $5, offer = $6, created_at = now(), published_at = NULL",
      device, o.release, id, o.target, o.payload_sha256,
      pqxx::binarystring(o.offer.data(), o.offer.size()));
  return true;
}

int apply_status(pqxx::work& w, const std::string& fleet, const std::string& device,
                 const StatusReport& s, bool latest) {
  // A first install that failed leaves the device on no model (kNoModel): a failure too.
  const bool rolled_back =
      s.state == update::UpdateState::kRolledBack || s.state == update::UpdateState::kNoModel;
  const bool refused = s.event == update::StatusEvent::kOfferRefused;
  if (!latest && !refused && !rolled_back) return 0;
  w.exec_params(
      "UPDATE devices SET current_artifact_sha256 = NULLIF($2, ''), last_seen = now(), "
      "status = $3 WHERE id = $1 AND fleet = $4",
      device, s.artifact,
      s.updating()                               ? "updating"
      : s.state == update::UpdateState::kNoModel ? "no_model"
                                                 : "online",
      fleet);
  static const std::string active = in_active();
  int changed = 0;
  // The target is installed (reported by any event naming it).
  changed += w.exec_params(
                  "UPDATE rollout_devices SET state = 'updated', "
                  "updated_at_device = now(), updated_at = now() "
                  "WHERE device_id = $1 AND state = 'offered' AND "
                  "target_artifact = $2 AND release_seq <= $3 AND " +
                      active,
                  device, s.artifact, s.release)
                 .affected_rows();
  if (rolled_back && s.failed_release > 0) {
    changed += w.exec_params(
                    "UPDATE rollout_devices SET state = 'failed', error = $3, "
                    "updated_at = now() WHERE device_id = $1 AND state = 'offered' AND "
                    "release_seq = $2 AND " +
                        active,
                    device, s.failed_release, s.detail)
                   .affected_rows();
    changed += w.exec_params(
                    "UPDATE rollout_devices SET state = 'failed', "
                    "error = 'returning to the previous model failed: ' || $3, "
                    "updated_at = now() WHERE device_id = $1 AND state = 'reverting' "
                    "AND revert_release = $2 AND " +
                        active,
                    device, s.failed_release, s.detail)
                   .affected_rows();
  }
  if (refused) {
    // A base that is not what the device runs: offer again from what it reported.
    // At most kMaxBaseRefusals times; then the device fails with the reason. Only the
    // offer the refusal names: a stale retained refusal (replayed to a new leader's
    // subscription) of an earlier release leaves a newer offer alone. A refusal naming
    // no release (the offer did not verify far enough to read it) applies to the offer.
    const bool base = s.refusal == update::OfferStatus::kBaseMismatch;
    changed += w.exec_params(
                    "UPDATE rollout_devices SET base_refusals = base_refusals + $2::integer, "
                    "state = CASE WHEN $2::integer = 1 AND base_refusals + 1 < $4::integer "
                    "THEN 'pending' ELSE 'failed' END, "
                    "error = CASE WHEN $2::integer = 1 AND base_refusals + 1 >= $4::integer "
                    "THEN 'refused ' || $4::integer::text || ' times: ' || $3::text "
                    "ELSE 'refused: ' || $3::text END, "
                    "updated_at = now() WHERE device_id = $1 AND state = 'offered' AND "
                    "($5::bigint = 0 OR release_seq = $5::bigint) AND " +
                        active,
                    device, base ? 1 : 0, s.detail, kMaxBaseRefusals, s.refused_release)
                   .affected_rows();
  }
  changed += w.exec_params(
                  "UPDATE rollout_devices SET state = 'rolled_back', updated_at = now() "
                  "WHERE device_id = $1 AND state = 'reverting' AND (base_artifact = $2 OR "
                  "(base_artifact IS NULL AND $2 = '')) AND revert_release <= $3 AND " +
                      active,
                  device, s.artifact, s.release)
                 .affected_rows();
  return changed;
}

std::optional<std::string> offered_payload(pqxx::work& w, const std::string& device,
                                           uint64_t release) {
  auto r = w.exec_params(
      "SELECT o.payload_sha256 FROM device_offers o JOIN rollout_devices rd ON rd.device_id = "
      "o.device_id AND rd.rollout_id = o.rollout_id JOIN rollouts r ON r.id = o.rollout_id "
      "WHERE o.device_id = $1 AND o.release_seq = $2 AND r.state IN " +
          sql_list(is_active) + " AND rd.state IN ('offered', 'reverting')",
      device, static_cast<int64_t>(release));
  if (r.empty()) return std::nullopt;
  return r[0][0].as<std::string>();
}

std::vector<Outstanding> outstanding(pqxx::work& w, bool unpublished_only,
                                     int64_t published_before_s) {
  std::vector<Outstanding> out;
  for (const auto& row : w.exec(
           "SELECT o.device_id, d.fleet, o.release_seq, o.offer, o.payload_sha256 "
           "FROM device_offers o JOIN devices d ON d.id = o.device_id "
           "JOIN rollout_devices rd ON rd.device_id = o.device_id AND rd.rollout_id = "
           "o.rollout_id JOIN rollouts r ON r.id = o.rollout_id WHERE r.state IN " +
           sql_list(is_active) + " AND rd.state IN ('offered', 'reverting')" +
           (published_before_s > 0 ? " AND o.published_at < now() - interval '1 second' * " +
                                         std::to_string(published_before_s)
                                   : std::string()) +
           (unpublished_only ? " AND o.published_at IS NULL FOR UPDATE OF o SKIP LOCKED" : ""))) {
    Outstanding o;
    o.device = row[0].as<std::string>();
    o.fleet = row[1].as<std::string>();
    o.release = row[2].as<uint64_t>();
    o.offer = pqxx::binarystring(row[3]).str();
    o.payload_sha256 = row[4].as<std::string>();
    out.push_back(std::move(o));
  }
  return out;
}

int mark_published(pqxx::work& w, const std::vector<std::pair<std::string, uint64_t>>& acked) {
  // kRowsPerStatement a statement (offer_batch.h).
  int marked = 0;
  for (size_t first = 0; first < acked.size(); first += kRowsPerStatement) {
    std::vector<std::string> devices, releases;
    for (size_t i = first; i < std::min(acked.size(), first + kRowsPerStatement); ++i) {
      devices.push_back(acked[i].first);
      releases.push_back(std::to_string(acked[i].second));
    }
    marked += static_cast<int>(
        w.exec_params("UPDATE device_offers o SET published_at = now() FROM unnest($1::text[], "
                      "$2::bigint[]) AS a(device, release) WHERE o.device_id = a.device AND "
                      "o.release_seq = a.release AND o.published_at IS NULL",
                      storage::text_array_literal(devices), storage::text_array_literal(releases))
            .affected_rows());
  }
  return marked;
}

}  // namespace tinyfleet::server::rollouts::repo
