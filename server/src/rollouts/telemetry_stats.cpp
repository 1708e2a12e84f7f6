#include "rollouts/telemetry_stats.h"

#include <map>
#include <set>

#include "tinyfleet/storage/array_literal.h"
#include "tinyfleet/update/telemetry_message.h"

namespace tinyfleet::server::rollouts::telemetry_stats {

static_assert(kLatencyBuckets == static_cast<int>(update::kTelemetryLatencyBuckets),
              "DeviceStats and the wire format share the latency buckets");

namespace {

// The windows a query sums: the spans' devices, each on its artifact in its time range
// (through telemetry_device_ts_idx, device by device).
constexpr const char* kWindows =
    " FROM telemetry t JOIN unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) "
    "AS s(device_id, artifact, since_ms, until_ms) ON t.device_id = s.device_id "
    "AND t.artifact_sha256 = s.artifact "
    "AND t.ts >= to_timestamp(s.since_ms::double precision / 1000) "
    "AND (s.until_ms IS NULL OR t.ts < to_timestamp(s.until_ms::double precision / 1000))";

// The spans as the four array parameters of kWindows.
struct Bound {
  std::string devices, artifacts, since, until;
};

Bound bind(const std::vector<Span>& spans) {
  std::vector<std::string> devices, artifacts;
  std::string since = "{", until = "{";
  for (const auto& s : spans) {
    devices.push_back(s.device);
    artifacts.push_back(s.artifact_sha256);
    const bool first = since.size() == 1;
    since += (first ? "" : ",") + std::to_string(s.since_unix_ms);
    until += (first ? "" : ",") + (s.until_unix_ms ? std::to_string(*s.until_unix_ms) : "NULL");
  }
  return {storage::text_array_literal(devices), storage::text_array_literal(artifacts), since + "}",
          until + "}"};
}

// Sums array column `column` (a name from this file, never from input) element-wise
// per device: calls add(device, index from 0, the sum as text) for each element.
template <class Add>
void sum_array(pqxx::work& w, const char* column, const Bound& b, Add add) {
  const auto rows = w.exec_params(std::string("SELECT t.device_id, u.i - 1, sum(u.v)::text") +
                                      kWindows + " CROSS JOIN LATERAL unnest(t." + column +
                                      ") WITH ORDINALITY AS u(v, i) GROUP BY 1, 2",
                                  b.devices, b.artifacts, b.since, b.until);
  for (const auto& r : rows) add(r[0].as<std::string>(), r[1].as<size_t>(), r[2].as<std::string>());
}

template <class T>
void put(std::vector<T>& v, size_t i, T value) {
  if (v.size() <= i) v.resize(i + 1);
  v[i] = value;
}

int64_t unix_ms(const pqxx::field& f) { return f.as<int64_t>(); }

// "(extract(epoch FROM x) * 1000)::bigint"
std::string ms(const std::string& x) { return "(extract(epoch FROM " + x + ") * 1000)::bigint"; }

}  // namespace

std::vector<DeviceStats> for_spans(pqxx::work& w, const std::vector<Span>& spans) {
  if (spans.empty()) return {};
  const Bound b = bind(spans);
  std::map<std::string, DeviceStats> by_device;
  const auto rows =
      w.exec_params(std::string("SELECT t.device_id, count(*), sum(t.inferences), sum(t.failures), "
                                "sum(t.probe_correct), sum(t.probe_total), sum(t.shadow_agree), "
                                "sum(t.shadow_total), sum(t.input_count), sum(t.active_us), "
                                "count(t.energy_measured_uj), sum(t.energy_measured_uj), "
                                "sum(t.energy_modelled_uj)") +
                        kWindows + " GROUP BY t.device_id",
                    b.devices, b.artifacts, b.since, b.until);
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
  sum_array(w, "class_counts", b, counts(&DeviceStats::class_counts));
  sum_array(w, "latency_hist", b, counts(&DeviceStats::latency_hist));
  sum_array(w, "input_sum", b, sums(&DeviceStats::input_sum));
  sum_array(w, "input_sumsq", b, sums(&DeviceStats::input_sumsq));
  std::vector<DeviceStats> out;
  out.reserve(by_device.size());
  for (auto& [id, s] : by_device) out.push_back(std::move(s));
  return out;
}

std::vector<DeviceStats> reporting(pqxx::work& w, const std::vector<Span>& spans) {
  if (spans.empty()) return {};
  const Bound b = bind(spans);
  std::vector<DeviceStats> out;
  for (const auto& r : w.exec_params(std::string("SELECT t.device_id, count(*)") + kWindows +
                                         " GROUP BY t.device_id ORDER BY t.device_id",
                                     b.devices, b.artifacts, b.since, b.until)) {
    DeviceStats s;
    s.device_id = r[0].as<std::string>();
    s.windows = r[1].as<uint32_t>();
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<DeviceStats> for_devices(pqxx::work& w, const std::vector<std::string>& devices,
                                     const std::string& artifact_sha256, int64_t since_unix_ms) {
  std::vector<Span> spans;
  for (const auto& d : std::set<std::string>(devices.begin(), devices.end())) {
    spans.push_back({d, artifact_sha256, since_unix_ms, std::nullopt});
  }
  return for_spans(w, spans);
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

CohortStats cohort(pqxx::work& w, int64_t rollout_id, int phase, CohortNeed need) {
  CohortStats out;
  if (need == CohortNeed::kNone) return out;
  const auto spans = [&](const std::string& sql) {
    std::vector<Span> v;
    for (const auto& r : w.exec_params(sql, rollout_id, phase, kMaxGroupDevices)) {
      Span s{r[0].as<std::string>(), r[1].as<std::string>(), unix_ms(r[2]), std::nullopt};
      if (!r[3].is_null()) s.until_unix_ms = unix_ms(r[3]);
      v.push_back(std::move(s));
    }
    return v;
  };
  // The device's artifact before the rollout: its base once offered, else what it runs.
  const std::string old_artifact = "COALESCE(rd.base_artifact, d.current_artifact_sha256)";
  const auto canary =
      spans("SELECT rd.device_id, rd.target_artifact, " + ms("rd.updated_at_device") +
            ", NULL::bigint FROM rollout_devices rd WHERE rd.rollout_id = $1 AND rd.phase <= "
            "$2 AND rd.state = 'updated' AND rd.updated_at_device IS NOT NULL "
            "ORDER BY rd.rank LIMIT $3");
  if (need == CohortNeed::kReporting) {
    out.canary = reporting(w, canary);
    return out;
  }
  out.canary = for_spans(w, canary);
  out.control = for_spans(
      w, spans("SELECT rd.device_id, d.current_artifact_sha256, " + ms("r.phase_started_at") +
               ", NULL::bigint FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id "
               "JOIN rollouts r ON r.id = rd.rollout_id WHERE rd.rollout_id = $1 AND "
               "rd.phase > $2 AND rd.state = 'pending' AND d.current_artifact_sha256 <> "
               "rd.target_artifact ORDER BY rd.rank LIMIT $3"));
  out.baseline =
      for_spans(w, spans("SELECT rd.device_id, " + old_artifact + ", " +
                         ms("r.created_at - make_interval(secs => greatest(p.bake_seconds, " +
                            std::to_string(kMinBaselineSeconds) + "))") +
                         ", " + ms("r.created_at") +
                         " FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id "
                         "JOIN rollouts r ON r.id = rd.rollout_id JOIN rollout_phases p ON "
                         "p.rollout_id = r.id AND p.idx = $2 WHERE rd.rollout_id = $1 AND " +
                         old_artifact + " <> rd.target_artifact ORDER BY rd.rank LIMIT $3"));
  const auto accuracy = w.exec_params(
      "SELECT (v.metadata->>'accuracy')::double precision FROM rollout_devices rd "
      "JOIN devices d ON d.id = rd.device_id JOIN artifacts a ON a.artifact_sha256 = " +
          old_artifact +
          " JOIN model_versions v ON v.id = a.version_id WHERE rd.rollout_id = $1 AND " +
          old_artifact +
          " <> rd.target_artifact AND jsonb_typeof(v.metadata->'accuracy') = 'number' LIMIT 1",
      rollout_id);
  if (!accuracy.empty()) out.baseline_accuracy = accuracy[0][0].as<double>();
  return out;
}

}  // namespace tinyfleet::server::rollouts::telemetry_stats
