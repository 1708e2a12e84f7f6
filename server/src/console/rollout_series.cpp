// A rollout's series for the console's charts: each gate's value over time (the engine's
// rollout_gate_history) and the rollout's telemetry per artifact in time buckets.
#include <algorithm>
#include <cmath>
#include <map>

#include "console/api.h"
#include "rollouts/states.h"

namespace tinyfleet::server::console {

namespace {

using nlohmann::json;

// The telemetry of the rollout's devices from 15 minutes before it began (the old model's
// reference) until it ended (15 minutes after, for a rollout no longer active).
std::string windows_of_rollout() {
  return "WITH tw AS (SELECT t.* FROM telemetry t JOIN rollout_devices rd ON rd.device_id = "
         "t.device_id AND rd.rollout_id = $1 JOIN rollouts r ON r.id = $1 WHERE t.ts >= "
         "r.created_at - interval '15 minutes' AND (r.state IN " +
         rollouts::sql_list(rollouts::is_active) +
         " OR t.ts <= r.updated_at + interval '15 minutes')) ";
}

json number_or_null(const pqxx::field& f) {
  return f.is_null() ? json(nullptr) : json(f.as<double>());
}

json gate_history(pqxx::work& w, int64_t id) {
  json out = json::array();
  for (const auto& r : w.exec_params(
           "SELECT extract(epoch FROM at)::float8, phase, stage, report::text FROM (SELECT * "
           "FROM rollout_gate_history WHERE rollout_id = $1 ORDER BY at DESC LIMIT $2) h "
           "ORDER BY at",
           id, kMaxGatePoints)) {
    json results = json::array();
    for (const auto& g : json::parse(r[3].c_str(), nullptr, false)) {
      if (g.is_object()) results.push_back(gate_result(g));
    }
    out.push_back({{"t", r[0].as<double>()},
                   {"phase", r[1].as<int>()},
                   {"stage", r[2].as<std::string>()},
                   {"results", results}});
  }
  return out;
}

// Telemetry windows of the rollout in at most kSeriesBuckets buckets of equal width, per
// artifact; an artifact of the rollout's version is its "target", any other the old model.
json telemetry_series(pqxx::work& w, int64_t id, int64_t version_id, double* width_out) {
  static const std::string with = windows_of_rollout();
  const auto span = w.exec_params1(
      with +
          "SELECT extract(epoch FROM min(ts))::float8, extract(epoch FROM max(ts))::float8 "
          "FROM tw",
      id);
  json out = json::array();
  if (span[0].is_null()) return out;
  const double start = span[0].as<double>(), end = span[1].as<double>();
  const double width = std::max(1.0, std::ceil((end - start + 1) / kSeriesBuckets));
  *width_out = width;
  std::map<std::string, size_t> index;
  for (const auto& r : w.exec_params(
           with +
               "SELECT s.artifact_sha256, COALESCE(a.device_class, ''), COALESCE(a.version_id = "
               "$2, "
               "false), s.b, s.windows, s.devices, s.inferences, s.accuracy, s.psi, s.drift, "
               "s.energy, s.p95, s.shadow FROM (SELECT artifact_sha256, floor((extract(epoch FROM "
               "ts) - $3) / $4)::int AS b, count(*) AS windows, count(DISTINCT device_id) AS "
               "devices, sum(inferences) AS inferences, avg(probe_accuracy) AS accuracy, "
               "avg(output_psi) FILTER (WHERE output_psi >= 0) AS psi, avg(input_drift) FILTER "
               "(WHERE input_drift >= 0) AS drift, avg(energy_uj) AS energy, avg(latency_p95_us) "
               "AS p95, avg(shadow_agreement) AS shadow FROM tw GROUP "
               "BY 1, 2) s LEFT JOIN LATERAL (SELECT device_class, version_id FROM artifacts WHERE "
               "artifact_sha256 = s.artifact_sha256 ORDER BY (version_id = $2) DESC, id LIMIT 1) a "
               "ON true ORDER BY 1, 4",
           id, version_id, start, width)) {
    const std::string sha = r[0].as<std::string>();
    auto [it, fresh] = index.try_emplace(sha, out.size());
    if (fresh) {
      out.push_back({{"artifact", sha},
                     {"class", r[1].as<std::string>()},
                     {"target", r[2].as<bool>()},
                     {"points", json::array()}});
    }
    out[it->second]["points"].push_back({{"t", start + r[3].as<int>() * width},
                                         {"windows", r[4].as<int64_t>()},
                                         {"devices", r[5].as<int64_t>()},
                                         {"inferences", r[6].as<int64_t>()},
                                         {"accuracy", number_or_null(r[7])},
                                         {"psi", number_or_null(r[8])},
                                         {"input_drift", number_or_null(r[9])},
                                         {"energy_uj", number_or_null(r[10])},
                                         {"latency_p95_us", number_or_null(r[11])},
                                         {"shadow_agreement", number_or_null(r[12])}});
  }
  return out;
}

}  // namespace

std::optional<json> rollout_series(pqxx::work& w, const std::string& name) {
  const auto r = w.exec_params("SELECT id, version_id FROM rollouts WHERE name = $1", name);
  if (r.empty()) return std::nullopt;
  const auto id = r[0][0].as<int64_t>(), version_id = r[0][1].as<int64_t>();
  double width = 0;
  json telemetry = telemetry_series(w, id, version_id, &width);
  return json{{"rollout", name},
              {"gates", gate_history(w, id)},
              {"bucket_seconds", width},
              {"telemetry", telemetry}};
}

}  // namespace tinyfleet::server::console
