#pragma once

// The console's HTTP/JSON API documents (docs/console.md), read inside a caller's
// transaction through the storage repositories and the rollouts module's repository.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

namespace tinyfleet::server::console {

// Devices (at most kMaxDevices, by id) with class, status, model version, last contact
// and last telemetry window, and counts by class, status and model version.
constexpr int kMaxDevices = 500;
nlohmann::json fleet(pqxx::work& w);

// Every rollout (newest first), as rollout() shows it.
nlohmann::json rollouts(pqxx::work& w);
// Phases with progress, each gate's value, bound and verdict, state and reason.
std::optional<nlohmann::json> rollout(pqxx::work& w, const std::string& name);

// Models with their versions and each version's artifact classes.
nlohmann::json models(pqxx::work& w);
// A version's artifacts per class: status, size, the compile report and the typed
// outputs (memory plan buffers, modelled cycles).
std::optional<nlohmann::json> version(pqxx::work& w, const std::string& model, int version);

}  // namespace tinyfleet::server::console
