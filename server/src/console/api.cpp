#include "console/api.h"

#include <map>

#include "rollouts/api_input.h"
#include "rollouts/repository.h"
#include "tinyfleet/storage/repositories.h"

namespace tinyfleet::server::console {

namespace {

using nlohmann::json;
namespace repo = rollouts::repo;

json parsed(const std::string& text, json fallback) {
  auto j = json::parse(text, nullptr, false);
  return j.is_discarded() ? fallback : j;
}

// The key's value if it has the type `is` checks, else `fallback`.
json typed(const json& o, const char* key, bool (json::*is)() const noexcept, json fallback) {
  const auto it = o.find(key);
  return it != o.end() && ((*it).*is)() ? *it : fallback;
}

// {value, devices} of a compared group, with its group name when `group`.
json group_of(const json& g, bool group) {
  json out = {{"value", typed(g, "value", &json::is_number, nullptr)},
              {"devices", typed(g, "devices", &json::is_number, 0)}};
  if (group) out["group"] = typed(g, "group", &json::is_string, "");
  return out;
}

json to_json(const repo::View& v) {
  json phases = json::array();
  for (const auto& p : v.phases) {
    phases.push_back({{"index", p.index},
                      {"percent", p.percent},
                      {"bake_seconds", p.bake_seconds},
                      {"state", p.state},
                      {"devices", p.devices},
                      {"admitted", p.admitted},
                      {"updated", p.updated},
                      {"failed", p.failed},
                      {"reporting", p.reporting}});
  }
  json gates = json::array();
  for (const auto& g : parsed(v.gate_report_json, json::array())) {
    if (g.is_object()) gates.push_back(gate_result(g));
  }
  return {{"name", v.name},
          {"model", v.model},
          {"version", v.version},
          {"state", v.state},
          {"reason", v.reason},
          {"gates", v.gates},
          {"on_gate_failure", v.on_failure},
          {"current_phase", v.current_phase},
          {"rate_per_minute", v.rate_per_minute},
          {"selected_devices", v.selected},
          {"rolled_back_devices", v.rolled_back},
          {"created_at", v.created_at},
          {"phases", phases},
          {"gate_results", gates}};
}

}  // namespace

json gate_result(const json& g) {
  json out = {{"metric", typed(g, "metric", &json::is_string, "")},
              {"op", typed(g, "op", &json::is_string, "")},
              {"bound", typed(g, "threshold", &json::is_number, 0.0)},
              {"value", typed(g, "value", &json::is_number, 0.0)},
              {"known", typed(g, "known", &json::is_boolean, false)},
              {"passed", typed(g, "passed", &json::is_boolean, false)}};
  for (const char* key : {"lo", "hi"}) {
    if (g.contains(key) && g[key].is_number()) out[key] = g[key];
  }
  if (g.contains("verdict") && g["verdict"].is_string()) out["verdict"] = g["verdict"];
  if (g.contains("timed_out") && g["timed_out"].is_boolean()) out["timed_out"] = g["timed_out"];
  if (g.contains("canary") && g["canary"].is_object()) out["canary"] = group_of(g["canary"], false);
  if (g.contains("reference") && g["reference"].is_object()) {
    out["reference"] = group_of(g["reference"], true);
  }
  return out;
}

namespace {

// A device's model version: the first version whose artifact for its class it runs.
const char* kModelOf =
    "LEFT JOIN LATERAL (SELECT m.name, v.version FROM artifacts a JOIN model_versions v ON "
    "v.id = a.version_id JOIN models m ON m.id = v.model_id WHERE a.artifact_sha256 = "
    "d.current_artifact_sha256 AND a.device_class = d.device_class ORDER BY v.version LIMIT 1) "
    "x ON true ";

std::string model_label(const pqxx::field& name, const pqxx::field& version,
                        const pqxx::field& sha) {
  if (!name.as<std::string>().empty()) {
    return name.as<std::string>() + " v" + std::to_string(version.as<int>());
  }
  return sha.as<std::string>().empty() ? "none" : "unknown artifact";
}

// Counts over the whole fleet (not only the page shown).
void fleet_counts(pqxx::work& w, json* out) {
  std::map<std::string, int64_t> by_class, by_status, by_model;
  for (const auto& r : w.exec("SELECT device_class, count(*) FROM devices GROUP BY 1")) {
    by_class[r[0].as<std::string>()] = r[1].as<int64_t>();
  }
  for (const auto& r : w.exec("SELECT status, count(*) FROM devices GROUP BY 1")) {
    by_status[r[0].as<std::string>()] = r[1].as<int64_t>();
  }
  for (const auto& r :
       w.exec(std::string("SELECT COALESCE(x.name, ''), COALESCE(x.version, 0), "
                          "COALESCE(d.current_artifact_sha256, ''), sum(d.n) FROM (SELECT "
                          "device_class, current_artifact_sha256, count(*) AS n FROM devices "
                          "GROUP BY 1, 2) d ") +
              kModelOf + "GROUP BY 1, 2, 3")) {
    by_model[model_label(r[0], r[1], r[2])] += r[3].as<int64_t>();
  }
  (*out)["by_class"] = by_class;
  (*out)["by_status"] = by_status;
  (*out)["by_model"] = by_model;
}

}  // namespace

json fleet(pqxx::work& w, const std::string& after) {
  const auto rows = w.exec_params(
      std::string("SELECT d.id, d.device_class, d.status, COALESCE(x.name, ''), "
                  "COALESCE(x.version, 0), COALESCE(d.last_seen::text, ''), "
                  "COALESCE(d.current_artifact_sha256, ''), COALESCE((SELECT max(t.ts)::text "
                  "FROM telemetry t WHERE t.device_id = d.id), '') FROM devices d ") +
          kModelOf + "WHERE d.id > $2 ORDER BY d.id LIMIT $1",
      kMaxDevices + 1, after);
  json devices = json::array();
  std::string next;
  for (const auto& r : rows) {
    if (static_cast<int>(devices.size()) == kMaxDevices) {
      next = devices.back()["id"];
      break;
    }
    const std::string status = r[2].as<std::string>();
    devices.push_back(
        {{"id", r[0].as<std::string>()},
         {"class", r[1].as<std::string>()},
         {"status", status},
         {"online", status == "online" || status == "updating" || status == "no_model"},
         {"model", model_label(r[3], r[4], r[6])},
         {"last_seen", r[5].as<std::string>()},
         {"last_telemetry", r[7].as<std::string>()}});
  }
  json out = {{"total", w.exec("SELECT count(*) FROM devices")[0][0].as<int64_t>()},
              {"after", after},
              {"shown", devices.size()},
              {"next", next},
              {"devices", devices}};
  fleet_counts(w, &out);
  return out;
}

json rollouts(pqxx::work& w) {
  json out = json::array();
  for (const auto& name : repo::names(w, false, 0, rollouts::kMaxPageSize).names) {
    if (auto v = repo::view(w, name)) out.push_back(to_json(*v));
  }
  return out;
}

std::optional<json> rollout(pqxx::work& w, const std::string& name) {
  auto v = repo::view(w, name);
  if (!v) return std::nullopt;
  return to_json(*v);
}

json models(pqxx::work& w) {
  json out = json::array();
  for (const auto& m : storage::models::list(w, "", 200)) {
    json versions = json::array();
    for (const auto& v : storage::models::list_versions(w, m.name, 0, 200)) {
      json classes = json::array();
      for (const auto& a : storage::artifacts::list_for_version(w, v.id)) {
        classes.push_back(
            {{"class", a.device_class},
             {"status", a.status == storage::ArtifactStatus::kCompiled ? "compiled" : "refused"}});
      }
      versions.push_back(
          {{"version", v.version}, {"created_at", v.created_at}, {"artifacts", classes}});
    }
    out.push_back({{"name", m.name},
                   {"description", m.description},
                   {"created_at", m.created_at},
                   {"versions", versions}});
  }
  return out;
}

std::optional<json> version(pqxx::work& w, const std::string& model, int number) {
  const auto v = storage::models::find_version(w, model, number);
  if (!v) return std::nullopt;
  json artifacts = json::array();
  for (const auto& a : storage::artifacts::list_for_version(w, v->id)) {
    json x = {{"class", a.device_class},
              {"status", a.status == storage::ArtifactStatus::kCompiled ? "compiled" : "refused"},
              {"sha256", a.artifact_sha256.value_or("")},
              {"size_bytes", a.size_bytes},
              {"refusal_reason", a.refusal_reason},
              {"report", parsed(a.report_json, json::object())},
              {"created_at", a.created_at}};
    if (auto o = storage::artifacts::outputs(w, a.id)) {
      json buffers = json::array();
      for (const auto& b : o->buffers) {
        buffers.push_back({{"tensor", b.tensor},
                           {"offset", b.offset},
                           {"size", b.size},
                           {"first_step", b.first_step},
                           {"last_step", b.last_step}});
      }
      x["memory_plan"] = {{"arena_bytes", o->arena_bytes}, {"buffers", buffers}};
      x["modelled_cycles"] = o->modelled_cycles;
    }
    artifacts.push_back(std::move(x));
  }
  return json{{"model", model},
              {"version", v->version},
              {"created_at", v->created_at},
              {"target_classes", v->target_classes},
              {"metadata", parsed(v->metadata_json, json::object())},
              {"artifacts", artifacts}};
}

}  // namespace tinyfleet::server::console
