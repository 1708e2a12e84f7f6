#include "tinyfleet/server/telemetry_service.h"

#include <algorithm>
#include <chrono>

#include "tinyfleet/server/grpc_status.h"

namespace tinyfleet::server {

using storage::ErrorCode;
using storage::Role;
using storage::StorageException;

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
