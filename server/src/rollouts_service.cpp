#include "tinyfleet/server/rollouts_service.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "names.h"
#include "rollouts/api_input.h"
#include "rollouts/gates.h"
#include "rollouts/operator_actions.h"
#include "rollouts/repository.h"
#include "rollouts/selection.h"
#include "rollouts/states.h"
#include "tinyfleet/server/gate_expression.h"
#include "tinyfleet/server/grpc_status.h"
#include "tinyfleet/storage/repositories.h"

namespace tinyfleet::server {

namespace {

namespace repo = rollouts::repo;
using storage::Error;
using storage::ErrorCode;
using storage::Role;
using storage::StorageException;

std::string join(const google::protobuf::RepeatedPtrField<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

bool terminal(const std::string& state) {
  const auto s = rollouts::rollout_state_from(state);
  return s && rollouts::is_final(*s);
}

// The rollout as the API shows it; false when there is none of that name.
bool load(pqxx::work& w, const std::string& name, v1::Rollout* out) {
  const auto v = repo::view(w, name);
  if (!v) return false;
  out->Clear();
  out->set_name(v->name);
  out->set_model(v->model);
  out->set_version(v->version);
  out->set_state(v->state);
  out->set_current_phase(static_cast<uint32_t>(v->current_phase));
  out->set_reason(v->reason);
  out->set_gates(v->gates);
  out->set_on_gate_failure(v->on_failure);
  out->set_rate_per_minute(static_cast<uint32_t>(v->rate_per_minute));
  out->set_created_at(v->created_at);
  for (const auto& g : nlohmann::json::parse(v->gate_report_json, nullptr, false)) {
    if (!g.is_object()) continue;
    auto* x = out->add_gate_results();
    x->set_metric(g.value("metric", ""));
    x->set_op(g.value("op", ""));
    x->set_threshold(g.value("threshold", 0.0));
    x->set_value(g.value("value", 0.0));
    x->set_known(g.value("known", false));
    x->set_passed(g.value("passed", false));
    x->set_verdict(g.value("verdict", ""));
    const auto lo = g.find("lo"), hi = g.find("hi");
    if (lo != g.end() && hi != g.end() && lo->is_number() && hi->is_number()) {
      x->set_has_interval(true);
      x->set_lo(lo->get<double>());
      x->set_hi(hi->get<double>());
    }
    x->set_timed_out(g.value("timed_out", false));
    const auto ref = g.find("reference");
    if (ref != g.end() && ref->is_object()) x->set_reference(ref->value("group", ""));
  }
  for (const auto& p : v->phases) {
    auto* x = out->add_phases();
    x->set_index(static_cast<uint32_t>(p.index));
    x->set_percent(static_cast<uint32_t>(p.percent));
    x->set_bake_seconds(static_cast<uint32_t>(p.bake_seconds));
    x->set_state(p.state);
    x->set_devices(static_cast<uint32_t>(p.devices));
    x->set_admitted(static_cast<uint32_t>(p.admitted));
    x->set_updated(static_cast<uint32_t>(p.updated));
    x->set_failed(static_cast<uint32_t>(p.failed));
    x->set_reporting(static_cast<uint32_t>(p.reporting));
  }
  out->set_selected_devices(static_cast<uint32_t>(v->selected));
  out->set_rolled_back_devices(static_cast<uint32_t>(v->rolled_back));
  return true;
}

}  // namespace

namespace {

// The request's own checks (before any database work); the rollout to store, without
// its version id, and the selector.
storage::Expected<std::pair<repo::NewRollout, rollouts::Selector>> checked(
    const v1::CreateRolloutRequest& req) {
  const auto invalid = [](const std::string& m) { return Error{ErrorCode::kInvalidArgument, m}; };
  if (!names::model(req.name())) {
    return invalid("rollout name '" + req.name() +
                   "' must be 1-63 of a-z, 0-9, '_' or '-', starting with a letter or digit");
  }
  repo::NewRollout r;
  r.name = req.name();
  for (const auto& p : req.phases()) r.phases.emplace_back(p.percent(), p.bake_seconds());
  if (r.phases.empty()) r.phases.emplace_back(100, 0);
  for (size_t i = 0; i < r.phases.size(); ++i) {
    const int prev = i == 0 ? 0 : r.phases[i - 1].first;
    if (r.phases[i].first <= prev || r.phases[i].first > 100) {
      return invalid("phase " + std::to_string(i) + " has " + std::to_string(r.phases[i].first) +
                     "%: phase percents must increase, each between 1 and 100");
    }
  }
  if (r.phases.back().first != 100) {
    return invalid("the last phase must reach 100% (it has " +
                   std::to_string(r.phases.back().first) + "%)");
  }
  auto gates = parse_gates(req.gates());
  if (!gates) return gates.error();
  r.gates_text = req.gates();
  r.on_failure = req.on_gate_failure().empty() ? "rollback" : req.on_gate_failure();
  if (r.on_failure != "rollback" && r.on_failure != "pause") {
    return invalid("on_gate_failure must be 'rollback' or 'pause', not '" + r.on_failure + "'");
  }
  r.rate_per_minute = req.rate_per_minute() == 0 ? 600 : static_cast<int>(req.rate_per_minute());
  r.fleet = req.selector().fleet().empty() ? "default" : req.selector().fleet();
  rollouts::Selector selector;
  selector.classes = {req.selector().device_classes().begin(),
                      req.selector().device_classes().end()};
  selector.tags = {req.selector().tags().begin(), req.selector().tags().end()};
  selector.ids = {req.selector().device_ids().begin(), req.selector().device_ids().end()};
  r.selector_json = nlohmann::json{
      {"fleet", r.fleet},
      {"device_classes", selector.classes},
      {"tags", selector.tags},
      {"device_ids",
       selector.ids}}.dump();
  return std::pair{r, selector};
}

int64_t version_id_of(pqxx::work& w, const v1::CreateRolloutRequest& req) {
  const auto model = w.exec_params("SELECT id FROM models WHERE name = $1", req.model());
  if (model.empty()) {
    throw StorageException({ErrorCode::kNotFound, "model '" + req.model() + "' does not exist"});
  }
  const auto version =
      w.exec_params("SELECT id FROM model_versions WHERE model_id = $1 AND version = $2",
                    model[0][0].as<int64_t>(), req.version());
  if (version.empty()) {
    throw StorageException({ErrorCode::kNotFound, "model '" + req.model() + "' has no version " +
                                                      std::to_string(req.version())});
  }
  return version[0][0].as<int64_t>();
}

// The fleet's devices the selector matches; refused when it names an unknown device or
// matches none.
std::vector<rollouts::Candidate> selected_devices(pqxx::work& w, const std::string& fleet,
                                                  const rollouts::Selector& selector,
                                                  const v1::CreateRolloutRequest& req) {
  std::vector<rollouts::Candidate> selected;
  std::set<std::string> seen;
  for (const auto& row :
       w.exec_params("SELECT id, device_class, tags::text FROM devices WHERE fleet = $1 "
                     "AND status <> 'deprovisioned'",
                     fleet)) {
    rollouts::Candidate d{row[0].as<std::string>(), row[1].as<std::string>(), {}};
    seen.insert(d.id);
    for (const auto& t : nlohmann::json::parse(row[2].as<std::string>(), nullptr, false)) {
      if (t.is_string()) d.tags.push_back(t.get<std::string>());
    }
    if (rollouts::matches(selector, d)) selected.push_back(std::move(d));
  }
  for (const auto& id : selector.ids) {
    if (!seen.count(id)) {
      throw StorageException({ErrorCode::kInvalidArgument,
                              "device '" + id + "' is not registered in fleet '" + fleet + "'"});
    }
  }
  if (selected.empty()) {
    throw StorageException({ErrorCode::kInvalidArgument,
                            "the selector (classes [" + join(req.selector().device_classes()) +
                                "], tags [" + join(req.selector().tags()) + "], devices [" +
                                join(req.selector().device_ids()) +
                                "]) matches 0 devices in fleet '" + fleet + "'"});
  }
  return selected;
}

// The version's artifact for every selected class; refused naming a class without one.
std::map<std::string, std::string> artifacts_for(pqxx::work& w, int64_t version_id,
                                                 const std::vector<rollouts::Candidate>& selected,
                                                 const v1::CreateRolloutRequest& req) {
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
  for (const auto& d : selected) ++per_class[d.device_class];
  for (const auto& [cls, n] : per_class) {
    if (artifact_of.count(cls)) continue;
    const std::string what = "model '" + req.model() + "' version " +
                             std::to_string(req.version()) + " is not compiled for class '" + cls +
                             "' (" + std::to_string(n) + " selected devices)";
    throw StorageException({ErrorCode::kInvalidArgument,
                            refused.count(cls)
                                ? what + ": the compiler refused it: " + refused[cls]
                                : what + ": compile it for that class or narrow the selector"});
  }
  return artifact_of;
}

}  // namespace

grpc::Status RolloutsService::CreateRollout(grpc::ServerContext* ctx,
                                            const v1::CreateRolloutRequest* req, v1::Rollout* out) {
  Caller caller;
  if (auto s = auth_.authorize(*ctx, Role::kOperator, "CreateRollout", &caller); !s.ok()) return s;
  if (!updates_off_.empty()) return failed_precondition(updates_off_);
  auto request = checked(*req);
  if (!request) return to_status(request.error());
  auto& [rollout, selector] = *request;
  auto created = db_.transact([&](pqxx::work& w) {
    rollout.version_id = version_id_of(w, *req);
    if (repo::exists(w, req->name())) {
      throw StorageException(
          {ErrorCode::kAlreadyExists, "a rollout named '" + req->name() + "' exists"});
    }
    const auto selected = selected_devices(w, rollout.fleet, selector, *req);
    const auto artifact_of = artifacts_for(w, rollout.version_id, selected, *req);
    // A device takes part in one active rollout at a time.
    std::set<std::string> chosen;
    for (const auto& d : selected) chosen.insert(d.id);
    if (auto taken = repo::first_taken(w, chosen)) {
      throw StorageException({ErrorCode::kFailedPrecondition,
                              "device '" + taken->first + "' is in active rollout '" +
                                  taken->second + "': wait for it to end or abort it"});
    }
    std::vector<int> percents;
    for (const auto& ph : rollout.phases) percents.push_back(ph.first);
    // A CreateRollout committed since first_taken() read may hold some of these devices:
    // the database's one-active-rollout-per-device index refuses the insert, and the
    // device is named from what that rollout committed.
    try {
      pqxx::subtransaction insert(w, "insert_rollout");
      repo::insert(insert, rollout, rollouts::place(req->name(), selected, percents), artifact_of);
      insert.commit();
    } catch (const pqxx::sql_error& e) {
      // 23505: unique_violation (raised by the COPY's end, whatever class pqxx gives it)
      if (e.sqlstate() != "23505" ||
          std::string(e.what()).find(repo::kOneActiveRolloutIndex) == std::string::npos) {
        throw;
      }
      const auto taken = repo::first_taken(w, chosen);
      throw StorageException(
          {ErrorCode::kFailedPrecondition,
           taken ? "device '" + taken->first + "' is in active rollout '" + taken->second +
                       "' (created at the same time): wait for it to end or abort it"
                 : "a selected device joined another active rollout at the same time"});
    }
    storage::audit_log::append(
        w, {caller.name, "rollout.create", "rollout/" + req->name(),
            nlohmann::json{{"devices", selected.size()}, {"gates", req->gates()}}.dump()});
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
  auto after = rollouts::parse_page_token(req->page_token());
  if (!after) {
    return invalid_argument("page_token '" + req->page_token().substr(0, 40) +
                            "' is not one this API returned");
  }
  const int size = rollouts::page_size(req->page_size());
  auto r = db_.transact([&](pqxx::work& w) {
    v1::ListRolloutsResponse list;
    const auto page = repo::names(w, req->active_only(), *after, size);
    for (const auto& name : page.names) load(w, name, list.add_rollouts());
    list.set_next_page_token(page.next_page_token);
    return list;
  });
  if (!r) return to_status(r.error());
  *out = *r;
  return grpc::Status::OK;
}

grpc::Status RolloutsService::change(grpc::ServerContext* ctx, const std::string& name,
                                     const char* method, const char* action, v1::Rollout* out,
                                     const std::string* skip_reason) {
  Caller caller;
  // Skipping the gates is an admin's call; every other command an operator's.
  const Role needed = skip_reason ? Role::kAdmin : Role::kOperator;
  if (auto s = auth_.authorize(*ctx, needed, method, &caller); !s.ok()) return s;
  rollouts::SkipGates skip;
  if (skip_reason) {
    if (auto why = rollouts::skip_gates_reason_error(*skip_reason)) return invalid_argument(*why);
    skip = {true, *skip_reason};
  }
  const std::string act = action;
  auto r = db_.transact([&](pqxx::work& w) {
    rollouts::apply_operator_action(w, name, act, caller.name, gates_, skip);
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
grpc::Status RolloutsService::SkipGates(grpc::ServerContext* ctx, const v1::SkipGatesRequest* req,
                                        v1::Rollout* out) {
  return change(ctx, req->name(), "SkipGates", "promote", out, &req->reason());
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

}  // namespace tinyfleet::server
