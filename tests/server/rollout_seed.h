#pragma once

// Rows a rollout needs, written straight into a scratch database: a device class, a
// model with one compiled version, and devices (optionally already running the
// version's artifact, so the engine updates them in place without an offer).
#include <string>
#include <vector>

#include <pqxx/pqxx>

namespace tinyfleet::testing {

struct SeededFleet {
  int64_t version_id = 0;
  std::string artifact;  // sha256 of the version's artifact for the class
  std::vector<std::string> devices;
};

constexpr const char* kSeedClass = "cortex-m4-256k";

SeededFleet seed_fleet(pqxx::work& w, int devices, bool on_target, const std::string& tag = "t");

// One telemetry window of `device` on `artifact`, stamped now: 100 probes, a share
// `probe_accuracy` of them right.
void add_telemetry(pqxx::work& w, const std::string& device, const std::string& artifact,
                   double probe_accuracy);

}  // namespace tinyfleet::testing
