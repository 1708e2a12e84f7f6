#include "tinyfleet/server/telemetry_service.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <vector>

#include "tinyfleet/server/grpc_status.h"

namespace tinyfleet::server {

using storage::ErrorCode;
using storage::Role;
using storage::StorageException;

namespace {

// PSI of one bucket's class shares against the reference's, 0.5 added per class, less its
// expected value without drift ((k - 1) / n for n inferences in the bucket), clamped at 0.
double pooled_psi(const std::vector<double>& bucket, const std::vector<double>& reference) {
  const size_t k = reference.size();
  double nb = 0, nr = 0, n = 0;
  for (size_t j = 0; j < k; ++j) {
    const double b = j < bucket.size() ? bucket[j] : 0.0;
    n += b, nb += b + 0.5, nr += reference[j] + 0.5;
  }
  if (k < 2 || n <= 0) return -1;
  double psi = 0;
  for (size_t j = 0; j < k; ++j) {
    const double p = ((j < bucket.size() ? bucket[j] : 0.0) + 0.5) / nb;
    const double q = (reference[j] + 0.5) / nr;
    psi += (p - q) * std::log(p / q);
  }
  return std::max(0.0, psi - static_cast<double>(k - 1) / n);
}

// Output drift per bucket from the pooled class counts of its windows (version 2), against
// those of every window the query covers: a bucket's outputs unlike the period's show up;
// windows without class counts (version 1) keep their devices' own PSI average.
void bucket_output_drift(pqxx::work& w, const std::string& where, int64_t since,
                         const v1::TelemetryQuery& req, v1::TelemetryQueryResponse& resp) {
  std::map<int64_t, std::vector<double>> by_bucket;
  std::vector<double> reference;
  for (const auto& row : w.exec_params(
           "SELECT (floor(EXTRACT(EPOCH FROM t.ts) / $4) * $4 * 1000)::bigint AS b, u.i - 1, "
           "sum(u.v)::double precision FROM telemetry t CROSS JOIN LATERAL "
           "unnest(t.class_counts) WITH ORDINALITY AS u(v, i)" +
               where + " AND u.i <= 1024 GROUP BY 1, 2",
           since, req.device_id(), req.rollout(), static_cast<int>(req.bucket_seconds()))) {
    const auto cls = row[1].as<size_t>();
    const double count = row[2].as<double>();
    auto& bucket = by_bucket[row[0].as<int64_t>()];
    if (bucket.size() <= cls) bucket.resize(cls + 1, 0.0);
    if (reference.size() <= cls) reference.resize(cls + 1, 0.0);
    bucket[cls] += count;
    reference[cls] += count;
  }
  for (auto& b : *resp.mutable_buckets()) {
    const auto it = by_bucket.find(b.start_unix_ms());
    if (it == by_bucket.end()) continue;
    const double psi = pooled_psi(it->second, reference);
    if (psi >= 0) b.set_output_psi(psi);
  }
}

}  // namespace

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
      bucket_output_drift(w, where, since, *req, resp);
    }
    return resp;
  });
  if (!r) return to_status(r.error());
  *out = std::move(*r);
  return grpc::Status::OK;
}

}  // namespace tinyfleet::server
