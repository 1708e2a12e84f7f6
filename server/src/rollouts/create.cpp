#include "rollouts/create.h"

#include <map>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "names.h"
#include "rollouts/repository.h"
#include "rollouts/selection.h"
#include "tinyfleet/server/gate_expression.h"
#include "tinyfleet/storage/repositories.h"

namespace tinyfleet::server::rollouts {

namespace {

using storage::Error;
using storage::ErrorCode;
using storage::StorageException;

std::string join(const google::protobuf::RepeatedPtrField<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// The request's own checks (before any database work); the rollout to store, without
// its version id, and the selector.
storage::Expected<std::pair<repo::NewRollout, Selector>> checked(
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
  Selector selector;
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
std::vector<Candidate> selected_devices(pqxx::work& w, const std::string& fleet,
                                        const Selector& selector,
                                        const v1::CreateRolloutRequest& req) {
  std::vector<Candidate> selected;
  std::set<std::string> seen;
  for (const auto& row :
       w.exec_params("SELECT id, device_class, tags::text FROM devices WHERE fleet = $1 "
                     "AND status <> 'deprovisioned'",
                     fleet)) {
    Candidate d{row[0].as<std::string>(), row[1].as<std::string>(), {}};
    seen.insert(d.id);
    for (const auto& t : nlohmann::json::parse(row[2].as<std::string>(), nullptr, false)) {
      if (t.is_string()) d.tags.push_back(t.get<std::string>());
    }
    if (matches(selector, d)) selected.push_back(std::move(d));
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
                                                 const std::vector<Candidate>& selected,
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

void create(pqxx::work& w, const v1::CreateRolloutRequest& req, const std::string& caller,
            const std::string& updates_off) {
  if (!updates_off.empty()) throw StorageException({ErrorCode::kFailedPrecondition, updates_off});
  auto request = checked(req);
  if (!request) throw StorageException(request.error());
  auto& [rollout, selector] = *request;
  rollout.version_id = version_id_of(w, req);
  if (repo::exists(w, req.name())) {
    throw StorageException(
        {ErrorCode::kAlreadyExists, "a rollout named '" + req.name() + "' exists"});
  }
  const auto selected = selected_devices(w, rollout.fleet, selector, req);
  const auto artifact_of = artifacts_for(w, rollout.version_id, selected, req);
  // A device takes part in one active rollout at a time.
  std::set<std::string> chosen;
  for (const auto& d : selected) chosen.insert(d.id);
  if (auto taken = repo::first_taken(w, chosen)) {
    throw StorageException(
        {ErrorCode::kFailedPrecondition, "device '" + taken->first + "' is in active rollout '" +
                                             taken->second + "': wait for it to end or abort it"});
  }
  std::vector<int> percents;
  for (const auto& ph : rollout.phases) percents.push_back(ph.first);
  // A CreateRollout committed since first_taken() read may hold some of these devices:
  // the database's one-active-rollout-per-device index refuses the insert, and the
  // device is named from what that rollout committed.
  try {
    pqxx::subtransaction insert(w, "insert_rollout");
    repo::insert(insert, rollout, place(req.name(), selected, percents), artifact_of);
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
      w, {caller, "rollout.create", "rollout/" + req.name(),
          nlohmann::json{{"devices", selected.size()}, {"gates", req.gates()}}.dump()});
}

}  // namespace tinyfleet::server::rollouts
