#pragma once

// The console's HTTP/JSON API documents (docs/console.md), read inside a caller's
// transaction through the storage repositories and the rollouts module's repository.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

namespace tinyfleet::server::console {

// One page of devices (at most kMaxDevices, by id, after the id `after`) with class,
// status, model version, last contact and last telemetry window; "next" is the id to
// ask after for the next page ("" on the last). Counts by class, status and model version
// are over the whole fleet.
constexpr int kMaxDevices = 500;
nlohmann::json fleet(pqxx::work& w, const std::string& after);

// One clause of a stored gate report (the rollout's current one, or a row of its gate
// history) as the API shows it: metric, op, bound (the report's threshold), value, known,
// passed; and those of the statistical gates where the report has them: lo and hi (the
// interval of the compared value), verdict ("pass", "fail" or "wait"), timed_out, canary
// {value, devices} and reference {group, value, devices}. A value of the wrong type is
// left out (or 0 / false for the first six), never an error.
nlohmann::json gate_result(const nlohmann::json& clause);

// Every rollout (newest first), as rollout() shows it.
nlohmann::json rollouts(pqxx::work& w);
// Phases with progress, each gate's value, bound and verdict, state and reason.
std::optional<nlohmann::json> rollout(pqxx::work& w, const std::string& name);

// A rollout's charts: each gate evaluation over time (at most kMaxGatePoints, the newest)
// and its telemetry per artifact in at most kSeriesBuckets time buckets.
constexpr int kMaxGatePoints = 2000;
constexpr int kSeriesBuckets = 60;
std::optional<nlohmann::json> rollout_series(pqxx::work& w, const std::string& name);

// Models with their versions and each version's artifact classes.
nlohmann::json models(pqxx::work& w);
// A version's artifacts per class: status, size, the compile report and the typed
// outputs (memory plan buffers, modelled cycles).
std::optional<nlohmann::json> version(pqxx::work& w, const std::string& model, int version);

}  // namespace tinyfleet::server::console
