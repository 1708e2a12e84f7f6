#include "tinyfleet/server/rollouts_service.h"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "names.h"
#include "tinyfleet/server/gate_expression.h"
#include "tinyfleet/server/grpc_status.h"
#include "tinyfleet/storage/repositories.h"

namespace tinyfleet::server {

namespace {

using storage::Error;
using storage::ErrorCode;
using storage::Role;
using storage::StorageException;

std::string join(const google::protobuf::RepeatedPtrField<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// A stable pseudo-random order of the devices for this rollout: who is in the canary.
std::string rank_key(const std::string& rollout, const std::string& device) {
  unsigned char h[16];
  const std::string in = rollout + "/" + device;
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(in.data()), in.size(),
                     nullptr, 0);
  return std::string(reinterpret_cast<const char*>(h), sizeof h);
}

bool terminal(const std::string& state) {
  return state == "completed" || state == "rolled_back" || state == "aborted";
}

// The rollout as the API shows it; false when there is none of that name.
bool load(pqxx::work& w, const std::string& name, v1::Rollout* out) {
  const auto rows = w.exec_params(
      "SELECT r.id, r.name, m.name, v.version, r.state, r.current_phase, r.reason, "
      "COALESCE(r.gates->>'text', ''), r.on_gate_failure, r.rate_per_minute, "
      "r.gate_report::text, to_char(r.created_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM rollouts r "
      "JOIN model_versions v ON v.id = r.version_id JOIN models m ON m.id = v.model_id "
      "WHERE r.name = $1",
      name);
  if (rows.empty()) return false;
  const auto& r = rows[0];
  const int64_t id = r[0].as<int64_t>();
  out->Clear();
  out->set_name(r[1].as<std::string>());
  out->set_model(r[2].as<std::string>());
  out->set_version(r[3].as<uint32_t>());
  out->set_state(r[4].as<std::string>());
  out->set_current_phase(r[5].as<uint32_t>());
  out->set_reason(r[6].as<std::string>());
  out->set_gates(r[7].as<std::string>());
  out->set_on_gate_failure(r[8].as<std::string>());
  out->set_rate_per_minute(r[9].as<uint32_t>());
  out->set_created_at(r[11].as<std::string>());
  for (const auto& g : nlohmann::json::parse(r[10].as<std::string>(), nullptr, false)) {
    if (!g.is_object()) continue;
    auto* x = out->add_gate_results();
    x->set_metric(g.value("metric", ""));
    x->set_op(g.value("op", ""));
    x->set_threshold(g.value("threshold", 0.0));
    x->set_value(g.value("value", 0.0));
    x->set_known(g.value("known", false));
    x->set_passed(g.value("passed", false));
  }
  for (const auto& p : w.exec_params(
           "SELECT idx, percent, bake_seconds, state FROM rollout_phases WHERE rollout_id = $1 "
           "ORDER BY idx",
           id)) {
    auto* x = out->add_phases();
    x->set_index(p[0].as<uint32_t>());
    x->set_percent(p[1].as<uint32_t>());
    x->set_bake_seconds(p[2].as<uint32_t>());
    x->set_state(p[3].as<std::string>());
  }
  uint32_t selected = 0, rolled_back = 0;
  for (const auto& c :
       w.exec_params("SELECT phase, state, count(*) FROM rollout_devices WHERE rollout_id = $1 "
                     "GROUP BY phase, state",
                     id)) {
    const auto phase = c[0].as<int>();
    const auto state = c[1].as<std::string>();
    const auto n = c[2].as<uint32_t>();
    selected += n;
    if (state == "rolled_back") rolled_back += n;
    if (phase < 0 || phase >= out->phases_size()) continue;
    auto* x = out->mutable_phases(phase);
    x->set_devices(x->devices() + n);
    if (state != "pending") x->set_admitted(x->admitted() + n);
    if (state == "updated") x->set_updated(x->updated() + n);
    if (state == "failed") x->set_failed(x->failed() + n);
  }
  for (const auto& c :
       w.exec_params("SELECT rd.phase, count(DISTINCT rd.device_id) FROM rollout_devices rd "
                     "JOIN telemetry t ON t.device_id = rd.device_id AND t.artifact_sha256 = "
                     "rd.target_artifact AND t.ts >= rd.updated_at_device "
                     "WHERE rd.rollout_id = $1 AND rd.state = 'updated' GROUP BY rd.phase",
                     id)) {
    const auto phase = c[0].as<int>();
    if (phase >= 0 && phase < out->phases_size()) {
      out->mutable_phases(phase)->set_reporting(c[1].as<uint32_t>());
    }
  }
  out->set_selected_devices(selected);
  out->set_rolled_back_devices(rolled_back);
  return true;
}

}  // namespace

grpc::Status RolloutsService::CreateRollout(grpc::ServerContext* ctx,
                                            const v1::CreateRolloutRequest* req, v1::Rollout* out) {
  Caller caller;
  if (auto s = auth_.authorize(*ctx, Role::kOperator, "CreateRollout", &caller); !s.ok()) return s;
  if (!updates_off_.empty()) return failed_precondition(updates_off_);
  if (!names::model(req->name())) {
    return invalid_argument("rollout name '" + req->name() +
                            "' must be 1-63 of a-z, 0-9, '_' or '-', starting with a letter or "
                            "digit");
  }
  std::vector<std::pair<int, int>> phases;
  for (const auto& p : req->phases()) phases.emplace_back(p.percent(), p.bake_seconds());
  if (phases.empty()) phases.emplace_back(100, 0);
  for (size_t i = 0; i < phases.size(); ++i) {
    const int prev = i == 0 ? 0 : phases[i - 1].first;
    if (phases[i].first <= prev || phases[i].first > 100) {
      return invalid_argument("phase " + std::to_string(i) + " has " +
                              std::to_string(phases[i].first) +
                              "%: phase percents must increase, each between 1 and 100");
    }
  }
  if (phases.back().first != 100) {
    return invalid_argument("the last phase must reach 100% (it has " +
                            std::to_string(phases.back().first) + "%)");
  }
  auto gates = parse_gates(req->gates());
  if (!gates) return to_status(gates.error());
  const std::string on_failure =
      req->on_gate_failure().empty() ? "rollback" : req->on_gate_failure();
  if (on_failure != "rollback" && on_failure != "pause") {
    return invalid_argument("on_gate_failure must be 'rollback' or 'pause', not '" + on_failure +
                            "'");
  }
  const int rate = req->rate_per_minute() == 0 ? 600 : static_cast<int>(req->rate_per_minute());
  const std::string fleet = req->selector().fleet().empty() ? "default" : req->selector().fleet();
  const std::set<std::string> classes(req->selector().device_classes().begin(),
                                      req->selector().device_classes().end());
  const std::set<std::string> tags(req->selector().tags().begin(), req->selector().tags().end());
  const std::set<std::string> ids(req->selector().device_ids().begin(),
                                  req->selector().device_ids().end());

  auto created = db_.transact([&](pqxx::work& w) {
    const auto model = w.exec_params("SELECT id FROM models WHERE name = $1", req->model());
    if (model.empty()) {
      throw StorageException({ErrorCode::kNotFound, "model '" + req->model() + "' does not exist"});
    }
    const auto version =
        w.exec_params("SELECT id FROM model_versions WHERE model_id = $1 AND version = $2",
                      model[0][0].as<int64_t>(), req->version());
    if (version.empty()) {
      throw StorageException({ErrorCode::kNotFound, "model '" + req->model() + "' has no version " +
                                                        std::to_string(req->version())});
    }
    const int64_t version_id = version[0][0].as<int64_t>();
    if (!w.exec_params("SELECT 1 FROM rollouts WHERE name = $1", req->name()).empty()) {
      throw StorageException(
          {ErrorCode::kAlreadyExists, "a rollout named '" + req->name() + "' exists"});
    }
    // The selection.
    struct Dev {
      std::string id, cls, key;
    };
    std::vector<Dev> selected;
    std::set<std::string> seen;
    for (const auto& row : w.exec_params(
             "SELECT id, device_class, tags::text FROM devices WHERE fleet = $1", fleet)) {
      Dev d{row[0].as<std::string>(), row[1].as<std::string>(), ""};
      seen.insert(d.id);
      if (!classes.empty() && !classes.count(d.cls)) continue;
      if (!ids.empty() && !ids.count(d.id)) continue;
      if (!tags.empty()) {
        const auto t = nlohmann::json::parse(row[2].as<std::string>(), nullptr, false);
        size_t have = 0;
        for (const auto& x : t) have += x.is_string() && tags.count(x.get<std::string>());
        if (have < tags.size()) continue;
      }
      d.key = rank_key(req->name(), d.id);
      selected.push_back(d);
    }
    for (const auto& id : ids) {
      if (!seen.count(id)) {
        throw StorageException({ErrorCode::kInvalidArgument,
                                "device '" + id + "' is not registered in fleet '" + fleet + "'"});
      }
    }
    if (selected.empty()) {
      throw StorageException({ErrorCode::kInvalidArgument,
                              "the selector (classes [" + join(req->selector().device_classes()) +
                                  "], tags [" + join(req->selector().tags()) + "], devices [" +
                                  join(req->selector().device_ids()) +
                                  "]) matches 0 devices in fleet '" + fleet + "'"});
    }
    // Every selected class needs a compiled artifact of this version.
    std::map<std::string, std::string> artifact_of;
    std::map<std::string, std::string> refused;
    for (const auto& row :
         w.exec_params("SELECT device_class, status, COALESCE(artifact_sha256, ''), refusal_reason "
                       "FROM artifacts WHERE version_id = $1",
                       version_id)) {
      if (row[1].as<std::string>() == "compiled") {
        artifact_of[row[0].as<std::string>()] = row[2].as<std::string>();
      } else {
        refused[row[0].as<std::string>()] = row[3].as<std::string>();
      }
    }
    std::map<std::string, int> per_class;
    for (const auto& d : selected) ++per_class[d.cls];
    for (const auto& [cls, n] : per_class) {
      if (artifact_of.count(cls)) continue;
      const std::string what = "model '" + req->model() + "' version " +
                               std::to_string(req->version()) + " is not compiled for class '" +
                               cls + "' (" + std::to_string(n) + " selected devices)";
      throw StorageException({ErrorCode::kInvalidArgument,
                              refused.count(cls)
                                  ? what + ": the compiler refused it: " + refused[cls]
                                  : what + ": compile it for that class or narrow the selector"});
    }
    // A device takes part in one active rollout at a time.
    std::set<std::string> chosen;
    for (const auto& d : selected) chosen.insert(d.id);
    for (const auto& row :
         w.exec("SELECT rd.device_id, r.name FROM rollout_devices rd JOIN rollouts r ON r.id = "
                "rd.rollout_id WHERE r.state IN ('running','paused','rolling_back')")) {
      if (chosen.count(row[0].as<std::string>())) {
        throw StorageException({ErrorCode::kFailedPrecondition,
                                "device '" + row[0].as<std::string>() + "' is in active rollout '" +
                                    row[1].as<std::string>() +
                                    "': wait for it to end or abort it"});
      }
    }
    nlohmann::json selector = {
        {"fleet", fleet}, {"device_classes", classes}, {"tags", tags}, {"device_ids", ids}};
    const int64_t id =
        w.exec_params1(
             "INSERT INTO rollouts (name, version_id, selector, gates, on_gate_failure, "
             "rate_per_minute, state, fleet, phase_started_at) VALUES ($1, $2, $3::jsonb, "
             "$4::jsonb, $5, $6, 'running', $7, now()) RETURNING id",
             req->name(), version_id, selector.dump(),
             nlohmann::json{{"text", req->gates()}}.dump(), on_failure, rate, fleet)[0]
            .as<int64_t>();
    for (size_t i = 0; i < phases.size(); ++i) {
      w.exec_params(
          "INSERT INTO rollout_phases (rollout_id, idx, percent, bake_seconds, state, "
          "started_at) VALUES ($1, $2, $3, $4, $5, now())",
          id, static_cast<int>(i), phases[i].first, phases[i].second,
          i == 0 ? "active" : "pending");
    }
    std::sort(selected.begin(), selected.end(),
              [](const Dev& a, const Dev& b) { return a.key < b.key; });
    const size_t n = selected.size();
    pqxx::stream_to copy(w, "rollout_devices",
                         std::vector<std::string>{"rollout_id", "device_id", "phase", "state",
                                                  "rank", "device_class", "target_artifact"});
    for (size_t rank = 0; rank < n; ++rank) {
      size_t phase = 0;
      while (phase + 1 < phases.size() &&
             rank >= static_cast<size_t>(std::ceil(phases[phase].first * n / 100.0))) {
        ++phase;
      }
      copy << std::make_tuple(id, selected[rank].id, static_cast<int>(phase), "pending",
                              static_cast<int>(rank), selected[rank].cls,
                              artifact_of[selected[rank].cls]);
    }
    copy.complete();
    storage::audit_log::append(w, {caller.name, "rollout.create", "rollout/" + req->name(),
                                   nlohmann::json{{"devices", n}, {"gates", req->gates()}}.dump()});
    v1::Rollout r;
    load(w, req->name(), &r);
    return r;
  });
  if (!created) return to_status(created.error());
  *out = *created;
  if (wake_) wake_();
  return grpc::Status::OK;
}

grpc::Status RolloutsService::GetRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                                         v1::Rollout* out) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "GetRollout", nullptr); !s.ok()) return s;
  auto found = db_.transact([&](pqxx::work& w) { return load(w, req->name(), out); });
  if (!found) return to_status(found.error());
  if (!*found) return not_found("rollout '" + req->name() + "' does not exist");
  return grpc::Status::OK;
}

grpc::Status RolloutsService::ListRollouts(grpc::ServerContext* ctx,
                                           const v1::ListRolloutsRequest* req,
                                           v1::ListRolloutsResponse* out) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "ListRollouts", nullptr); !s.ok()) return s;
  auto r = db_.transact([&](pqxx::work& w) {
    v1::ListRolloutsResponse list;
    for (const auto& row : w.exec(std::string("SELECT name FROM rollouts ") +
                                  (req->active_only() ? "WHERE state IN ('running','paused',"
                                                        "'rolling_back') "
                                                      : "") +
                                  "ORDER BY id")) {
      load(w, row[0].as<std::string>(), list.add_rollouts());
    }
    return list;
  });
  if (!r) return to_status(r.error());
  *out = *r;
  return grpc::Status::OK;
}

grpc::Status RolloutsService::change(grpc::ServerContext* ctx, const std::string& name,
                                     const char* method, const char* action, v1::Rollout* out) {
  Caller caller;
  if (auto s = auth_.authorize(*ctx, Role::kOperator, method, &caller); !s.ok()) return s;
  const std::string act = action;
  auto r = db_.transact([&](pqxx::work& w) {
    const auto rows = w.exec_params(
        "SELECT id, state, current_phase, (SELECT count(*) FROM rollout_phases p WHERE "
        "p.rollout_id = r.id) FROM rollouts r WHERE name = $1 FOR UPDATE",
        name);
    if (rows.empty()) {
      throw StorageException({ErrorCode::kNotFound, "rollout '" + name + "' does not exist"});
    }
    const int64_t id = rows[0][0].as<int64_t>();
    const std::string state = rows[0][1].as<std::string>();
    const int phase = rows[0][2].as<int>(), phases = rows[0][3].as<int>();
    auto refuse = [&](const std::string& allowed) {
      throw StorageException(
          {ErrorCode::kFailedPrecondition,
           "rollout '" + name + "' is " + state + "; " + act + " needs it " + allowed});
    };
    if (act == "pause") {
      if (state != "running") refuse("running");
      w.exec_params("UPDATE rollouts SET state = 'paused', reason = $2 WHERE id = $1", id,
                    "paused by " + caller.name);
    } else if (act == "resume") {
      if (state != "paused") refuse("paused");
      w.exec_params("UPDATE rollouts SET state = 'running', reason = $2 WHERE id = $1", id,
                    "resumed by " + caller.name);
      // A phase paused by a gate bakes again before its gates decide again.
      w.exec_params(
          "UPDATE rollout_phases SET state = 'active' WHERE rollout_id = $1 AND idx = $2 AND "
          "state = 'failed'",
          id, phase);
    } else if (act == "promote") {
      if (state != "running" && state != "paused") refuse("running or paused");
      w.exec_params("UPDATE rollout_phases SET state = 'passed' WHERE rollout_id = $1 AND idx = $2",
                    id, phase);
      if (phase + 1 >= phases) {
        w.exec_params("UPDATE rollouts SET state = 'completed', reason = $2 WHERE id = $1", id,
                      "last phase promoted by " + caller.name);
      } else {
        w.exec_params(
            "UPDATE rollouts SET state = 'running', current_phase = $2, phase_started_at = "
            "now(), reason = $3 WHERE id = $1",
            id, phase + 1, "phase " + std::to_string(phase) + " promoted by " + caller.name);
        w.exec_params(
            "UPDATE rollout_phases SET state = 'active' WHERE rollout_id = $1 AND idx = $2", id,
            phase + 1);
      }
    } else if (act == "abort") {
      if (terminal(state) || state == "rolling_back") refuse("running or paused");
      w.exec_params("UPDATE rollouts SET state = 'rolling_back', reason = $2 WHERE id = $1", id,
                    "aborted by " + caller.name);
    }
    w.exec_params("UPDATE rollouts SET updated_at = now() WHERE id = $1", id);
    storage::audit_log::append(w, {caller.name, "rollout." + act, "rollout/" + name, "{}"});
    v1::Rollout rollout;
    load(w, name, &rollout);
    return rollout;
  });
  if (!r) return to_status(r.error());
  *out = *r;
  if (wake_) wake_();
  return grpc::Status::OK;
}

grpc::Status RolloutsService::PauseRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                                           v1::Rollout* out) {
  return change(ctx, req->name(), "PauseRollout", "pause", out);
}
grpc::Status RolloutsService::ResumeRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                                            v1::Rollout* out) {
  return change(ctx, req->name(), "ResumeRollout", "resume", out);
}
grpc::Status RolloutsService::PromoteRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                                             v1::Rollout* out) {
  return change(ctx, req->name(), "PromoteRollout", "promote", out);
}
grpc::Status RolloutsService::AbortRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                                           v1::Rollout* out) {
  return change(ctx, req->name(), "AbortRollout", "abort", out);
}

grpc::Status RolloutsService::WatchRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                                           grpc::ServerWriter<v1::Rollout>* writer) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "WatchRollout", nullptr); !s.ok()) return s;
  std::string last;
  while (!ctx->IsCancelled()) {
    v1::Rollout r;
    auto found = db_.transact([&](pqxx::work& w) { return load(w, req->name(), &r); });
    if (!found) return to_status(found.error());
    if (!*found) return not_found("rollout '" + req->name() + "' does not exist");
    std::string now;
    r.SerializeToString(&now);
    if (now != last) {
      if (!writer->Write(r)) return grpc::Status::OK;
      last = now;
    }
    if (terminal(r.state())) return grpc::Status::OK;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  return grpc::Status::OK;
}

grpc::Status TelemetryService::Query(grpc::ServerContext* ctx, const v1::TelemetryQuery* req,
                                     v1::TelemetryQueryResponse* out) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "Query", nullptr); !s.ok()) return s;
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const int64_t since = req->since_unix_ms() > 0 ? req->since_unix_ms() : now_ms - 3600 * 1000;
  const int limit = req->limit() == 0 ? 1000 : static_cast<int>(std::min(req->limit(), 10000u));
  if (!req->device_id().empty() && !req->rollout().empty()) {
    return invalid_argument("query by device_id or by rollout, not both");
  }
  auto r = db_.transact([&](pqxx::work& w) {
    if (!req->rollout().empty() &&
        w.exec_params("SELECT 1 FROM rollouts WHERE name = $1", req->rollout()).empty()) {
      throw StorageException(
          {ErrorCode::kNotFound, "rollout '" + req->rollout() + "' does not exist"});
    }
    if (!req->device_id().empty() &&
        w.exec_params("SELECT 1 FROM devices WHERE id = $1", req->device_id()).empty()) {
      throw StorageException(
          {ErrorCode::kNotFound, "device '" + req->device_id() + "' does not exist"});
    }
    const std::string where =
        " WHERE t.ts >= to_timestamp($1 / 1000.0) AND ($2 = '' OR t.device_id = $2) AND ($3 = '' "
        "OR t.device_id IN (SELECT rd.device_id FROM rollout_devices rd JOIN rollouts r ON "
        "r.id = rd.rollout_id WHERE r.name = $3))";
    v1::TelemetryQueryResponse resp;
    for (const auto& row : w.exec_params(
             "SELECT t.device_id, (EXTRACT(EPOCH FROM t.ts) * 1000)::bigint, t.artifact_sha256, "
             "t.inferences, t.latency_p50_us, t.latency_p95_us, t.energy_uj, t.output_psi, "
             "t.input_drift, COALESCE(t.probe_accuracy, -1), COALESCE(t.shadow_agreement, -1) "
             "FROM telemetry t" +
                 where + " ORDER BY t.ts DESC LIMIT $4",
             since, req->device_id(), req->rollout(), limit)) {
      auto* x = resp.add_windows();
      x->set_device_id(row[0].as<std::string>());
      x->set_ts_unix_ms(row[1].as<int64_t>());
      x->set_artifact_sha256(row[2].as<std::string>());
      x->set_inferences(row[3].as<uint32_t>());
      x->set_latency_p50_us(row[4].as<double>());
      x->set_latency_p95_us(row[5].as<double>());
      x->set_energy_uj(row[6].as<double>());
      x->set_output_psi(row[7].as<double>());
      x->set_input_drift(row[8].as<double>());
      x->set_probe_accuracy(row[9].as<double>());
      x->set_shadow_agreement(row[10].as<double>());
    }
    if (req->bucket_seconds() > 0) {
      for (const auto& row : w.exec_params(
               "SELECT (floor(EXTRACT(EPOCH FROM t.ts) / $4) * $4 * 1000)::bigint AS b, count(*), "
               "avg(t.output_psi) FILTER (WHERE t.output_psi >= 0), avg(t.input_drift) FILTER "
               "(WHERE t.input_drift >= 0), avg(t.energy_uj), avg(t.latency_p95_us), "
               "COALESCE(avg(t.probe_accuracy), -1) FROM telemetry t" +
                   where + " GROUP BY b ORDER BY b",
               since, req->device_id(), req->rollout(), static_cast<int>(req->bucket_seconds()))) {
        auto* b = resp.add_buckets();
        b->set_start_unix_ms(row[0].as<int64_t>());
        b->set_windows(row[1].as<uint32_t>());
        b->set_output_psi(row[2].is_null() ? -1 : row[2].as<double>());
        b->set_input_drift(row[3].is_null() ? -1 : row[3].as<double>());
        b->set_energy_uj(row[4].as<double>());
        b->set_latency_p95_us(row[5].as<double>());
        b->set_probe_accuracy(row[6].as<double>());
      }
    }
    return resp;
  });
  if (!r) return to_status(r.error());
  *out = std::move(*r);
  return grpc::Status::OK;
}

}  // namespace tinyfleet::server
