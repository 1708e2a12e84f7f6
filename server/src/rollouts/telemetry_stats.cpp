#include "rollouts/telemetry_stats.h"

#include <map>

#include "tinyfleet/storage/array_literal.h"
#include "tinyfleet/update/telemetry_message.h"

namespace tinyfleet::server::rollouts::telemetry_stats {

static_assert(kLatencyBuckets == static_cast<int>(update::kTelemetryLatencyBuckets),
              "DeviceStats and the wire format share the latency buckets");

namespace {

// The windows a query sums: one device set, one artifact, since a time.
constexpr const char* kWindows =
    " WHERE t.device_id = ANY($1::text[]) AND t.artifact_sha256 = $2 "
    "AND t.ts >= to_timestamp($3::double precision / 1000)";

// Sums array column `column` (a name from this file, never from input) element-wise
// per device: calls add(device, index from 0, the sum as text) for each element.
template <class Add>
void sum_array(pqxx::work& w, const char* column, const std::string& devices,
               const std::string& artifact, int64_t since, Add add) {
  const auto rows = w.exec_params(
      std::string("SELECT t.device_id, u.i - 1, sum(u.v)::text FROM telemetry t CROSS JOIN "
                  "LATERAL unnest(t.") +
          column + ") WITH ORDINALITY AS u(v, i)" + kWindows + " GROUP BY 1, 2",
      devices, artifact, since);
  for (const auto& r : rows) add(r[0].as<std::string>(), r[1].as<size_t>(), r[2].as<std::string>());
}

template <class T>
void put(std::vector<T>& v, size_t i, T value) {
  if (v.size() <= i) v.resize(i + 1);
  v[i] = value;
}

}  // namespace

std::vector<DeviceStats> for_devices(pqxx::work& w, const std::vector<std::string>& devices,
                                     const std::string& artifact_sha256, int64_t since_unix_ms) {
  if (devices.empty()) return {};
  const std::string ids = storage::text_array_literal(devices);
  std::map<std::string, DeviceStats> by_device;
  const auto rows =
      w.exec_params(std::string("SELECT t.device_id, count(*), sum(t.inferences), sum(t.failures), "
                                "sum(t.probe_correct), sum(t.probe_total), sum(t.shadow_agree), "
                                "sum(t.shadow_total), sum(t.input_count), sum(t.active_us), "
                                "count(t.energy_measured_uj), sum(t.energy_measured_uj), "
                                "sum(t.energy_modelled_uj) FROM telemetry t") +
                        kWindows + " GROUP BY t.device_id",
                    ids, artifact_sha256, since_unix_ms);
  for (const auto& r : rows) {
    DeviceStats s;
    s.device_id = r[0].as<std::string>();
    s.windows = r[1].as<uint32_t>();
    s.inferences = r[2].as<uint64_t>();
    s.failures = r[3].as<uint64_t>();
    s.probe_correct = r[4].as<uint64_t>();
    s.probe_total = r[5].as<uint64_t>();
    s.shadow_agree = r[6].as<uint64_t>();
    s.shadow_total = r[7].as<uint64_t>();
    s.input_count = r[8].as<uint64_t>();
    s.active_seconds = r[9].as<double>() / 1e6;
    if (r[10].as<uint32_t>() == s.windows) s.energy_measured_uj = r[11].as<double>();
    s.energy_modelled_uj = r[12].as<double>();
    by_device.emplace(s.device_id, std::move(s));
  }
  auto counts = [&](std::vector<uint64_t> DeviceStats::*field) {
    return [&by_device, field](const std::string& device, size_t i, const std::string& sum) {
      auto it = by_device.find(device);
      if (it != by_device.end()) put(it->second.*field, i, static_cast<uint64_t>(std::stoull(sum)));
    };
  };
  auto sums = [&](std::vector<double> DeviceStats::*field) {
    return [&by_device, field](const std::string& device, size_t i, const std::string& sum) {
      auto it = by_device.find(device);
      if (it != by_device.end()) put(it->second.*field, i, std::stod(sum));
    };
  };
  sum_array(w, "class_counts", ids, artifact_sha256, since_unix_ms,
            counts(&DeviceStats::class_counts));
  sum_array(w, "latency_hist", ids, artifact_sha256, since_unix_ms,
            counts(&DeviceStats::latency_hist));
  sum_array(w, "input_sum", ids, artifact_sha256, since_unix_ms, sums(&DeviceStats::input_sum));
  sum_array(w, "input_sumsq", ids, artifact_sha256, since_unix_ms, sums(&DeviceStats::input_sumsq));
  std::vector<DeviceStats> out;
  out.reserve(by_device.size());
  for (auto& [id, s] : by_device) out.push_back(std::move(s));
  return out;
}

std::vector<DeviceStats> for_rollout(pqxx::work& w, int64_t rollout_id,
                                     const std::string& artifact_sha256, int64_t since_unix_ms) {
  std::vector<std::string> devices;
  for (const auto& r : w.exec_params(
           "SELECT device_id FROM rollout_devices WHERE rollout_id = $1 ORDER BY device_id",
           rollout_id)) {
    devices.push_back(r[0].as<std::string>());
  }
  return for_devices(w, devices, artifact_sha256, since_unix_ms);
}

}  // namespace tinyfleet::server::rollouts::telemetry_stats
