#include "rollout_seed.h"

#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"

namespace tinyfleet::testing {

using namespace tinyfleet::storage;

SeededFleet seed_fleet(pqxx::work& w, int devices, bool on_target, const std::string& tag) {
  device_classes::upsert(w, {kSeedClass, R"({"ram_bytes":262144})"});
  models::create(w, "digits", "");
  const auto v = models::create_version(w, {"digits", 0, PgBlobStore::put(w, "onnx"), {}, {}, {}});
  SeededFleet out;
  out.version_id = v.id;
  out.artifact = PgBlobStore::put(w, "artifact of digits v1");
  NewArtifact a;
  a.version_id = v.id;
  a.device_class = kSeedClass;
  a.artifact_sha256 = out.artifact;
  artifacts::store(w, a);
  for (int i = 0; i < devices; ++i) {
    const std::string id = "dev-" + std::to_string(1000 + i);
    devices::create(w, {id, "default", kSeedClass, {tag}, "hash"});
    if (on_target) {
      w.exec_params("UPDATE devices SET current_artifact_sha256 = $2 WHERE id = $1", id,
                    out.artifact);
    }
    out.devices.push_back(id);
  }
  return out;
}

void add_telemetry(pqxx::work& w, const std::string& device, const std::string& artifact,
                   double probe_accuracy) {
  w.exec("SELECT tinyfleet_ensure_telemetry_partition((now() AT TIME ZONE 'UTC')::date)");
  w.exec_params(
      "INSERT INTO telemetry (device_id, ts, artifact_sha256, inferences, latency_p50_us, "
      "latency_p95_us, energy_uj, output_psi, input_drift, probe_accuracy, probe_correct, "
      "probe_total) VALUES ($1, now(), $2, 20, 100, 200, 5, 0.1, 0.1, $3, round($3::double "
      "precision * 100)::bigint, 100)",
      device, artifact, probe_accuracy);
}

}  // namespace tinyfleet::testing
