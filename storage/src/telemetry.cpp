#include "tinyfleet/storage/telemetry.h"

#include <cstdio>
#include <ctime>
#include <set>
#include <tuple>
#include <type_traits>

#include "sql.h"

namespace tinyfleet::storage::telemetry {

namespace {
const sql::Statement kEnsurePartition{"telemetry.ensure_partition",
                                      "SELECT tinyfleet_ensure_telemetry_partition($1::date)"};
const sql::Statement kInsert{
    "telemetry.insert",
    "INSERT INTO telemetry (device_id, ts, rollout_id, artifact_sha256, inferences, "
    "latency_p50_us, latency_p95_us, energy_uj, output_psi, input_drift, probe_accuracy, "
    "shadow_agreement, version, seq, failures, probe_total, probe_correct, shadow_total, "
    "shadow_agree, class_counts, input_count, input_sum, input_sumsq, latency_hist, active_us, "
    "energy_measured_uj, energy_modelled_uj) VALUES ($1, to_timestamp($2::double precision / "
    "1000), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, "
    "$20::bigint[], $21, $22::double precision[], $23::double precision[], $24::bigint[], $25, "
    "$26, $27)"};
const sql::Statement kForDevice{
    "telemetry.for_device",
    "SELECT device_id, (extract(epoch FROM ts) * 1000)::bigint, rollout_id, artifact_sha256, "
    "inferences, latency_p50_us, latency_p95_us, energy_uj, output_psi, input_drift, "
    "probe_accuracy, shadow_agreement, version, seq, failures, probe_total, probe_correct, "
    "shadow_total, shadow_agree, class_counts::text, input_count, input_sum::text, "
    "input_sumsq::text, latency_hist::text, active_us, energy_measured_uj, energy_modelled_uj "
    "FROM telemetry WHERE device_id = $1 "
    "AND ts >= to_timestamp($2::double precision / 1000) ORDER BY ts LIMIT $3"};
const sql::Statement kDropBefore{"telemetry.drop_before",
                                 "SELECT tinyfleet_drop_telemetry_partitions($1::date)"};

// An array's text form, {1,2,3}; doubles with every digit (a round trip is exact).
std::string array_text(const std::vector<int64_t>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(v[i]);
  }
  return out + "}";
}
std::string array_text(const std::vector<double>& v) {
  std::string out = "{";
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    std::snprintf(buf, sizeof buf, "%.17g", v[i]);
    out += buf;
  }
  return out + "}";
}
// The text form back (PostgreSQL writes these numbers without quotes or NULLs).
template <class T>
std::vector<T> from_array_text(const std::string& text) {
  std::vector<T> out;
  if (text.size() <= 2) return out;  // "{}"
  size_t at = 1;
  while (at < text.size() - 1) {
    size_t end = text.find(',', at);
    if (end == std::string::npos) end = text.size() - 1;
    const std::string item = text.substr(at, end - at);
    if constexpr (std::is_integral_v<T>) {
      out.push_back(static_cast<T>(std::stoll(item)));
    } else {
      out.push_back(std::stod(item));
    }
    at = end + 1;
  }
  return out;
}

std::string utc_day(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

// COPY text form of a timestamptz, in UTC with milliseconds.
std::string copy_timestamp(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03d+00", buf, static_cast<int>(unix_ms % 1000));
  return out;
}

template <class T>
std::string opt_text(const std::optional<T>& v) {
  return v ? pqxx::to_string(*v) : std::string();
}

void ensure_partitions(pqxx::work& w, const std::vector<TelemetryRow>& rows) {
  std::set<std::string> days;
  for (const auto& r : rows) days.insert(utc_day(r.ts_unix_ms));
  for (const auto& d : days) sql::run(w, kEnsurePartition, d);
}

template <class T>
std::optional<T> opt_field(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<T>();
}
}  // namespace

void insert_batch(pqxx::work& w, const std::vector<TelemetryRow>& rows) {
  if (rows.empty()) return;
  ensure_partitions(w, rows);
  pqxx::stream_to copy(w, "telemetry",
                       std::vector<std::string>{"device_id",         "ts",
                                                "rollout_id",        "artifact_sha256",
                                                "inferences",        "latency_p50_us",
                                                "latency_p95_us",    "energy_uj",
                                                "output_psi",        "input_drift",
                                                "probe_accuracy",    "shadow_agreement",
                                                "version",           "seq",
                                                "failures",          "probe_total",
                                                "probe_correct",     "shadow_total",
                                                "shadow_agree",      "class_counts",
                                                "input_count",       "input_sum",
                                                "input_sumsq",       "latency_hist",
                                                "active_us",         "energy_measured_uj",
                                                "energy_modelled_uj"});
  for (const auto& r : rows) {
    // Optional columns go in as a null pointer for NULL.
    const std::string rollout = opt_text(r.rollout_id);
    const std::string probe = opt_text(r.probe_accuracy);
    const std::string shadow = opt_text(r.shadow_agreement);
    const std::string measured = opt_text(r.energy_measured_uj);
    copy << std::tuple_cat(
        std::make_tuple(r.device_id, copy_timestamp(r.ts_unix_ms),
                        r.rollout_id ? rollout.c_str() : nullptr, r.artifact_sha256, r.inferences,
                        r.latency_p50_us, r.latency_p95_us, r.energy_uj, r.output_psi,
                        r.input_drift, r.probe_accuracy ? probe.c_str() : nullptr,
                        r.shadow_agreement ? shadow.c_str() : nullptr),
        std::make_tuple(r.version, r.seq, r.failures, r.probe_total, r.probe_correct,
                        r.shadow_total, r.shadow_agree, array_text(r.class_counts), r.input_count,
                        array_text(r.input_sum), array_text(r.input_sumsq),
                        array_text(r.latency_hist), r.active_us,
                        r.energy_measured_uj ? measured.c_str() : nullptr, r.energy_modelled_uj));
  }
  copy.complete();
}

void insert_rows(pqxx::work& w, const std::vector<TelemetryRow>& rows) {
  ensure_partitions(w, rows);
  for (const auto& r : rows) {
    sql::run(w, kInsert, r.device_id, r.ts_unix_ms, r.rollout_id ? &*r.rollout_id : nullptr,
             r.artifact_sha256, r.inferences, r.latency_p50_us, r.latency_p95_us, r.energy_uj,
             r.output_psi, r.input_drift, r.probe_accuracy ? &*r.probe_accuracy : nullptr,
             r.shadow_agreement ? &*r.shadow_agreement : nullptr, r.version, r.seq, r.failures,
             r.probe_total, r.probe_correct, r.shadow_total, r.shadow_agree,
             array_text(r.class_counts), r.input_count, array_text(r.input_sum),
             array_text(r.input_sumsq), array_text(r.latency_hist), r.active_us,
             r.energy_measured_uj ? &*r.energy_measured_uj : nullptr, r.energy_modelled_uj);
  }
}

int drop_partitions_before(pqxx::work& w, int64_t day_unix_ms) {
  return sql::run(w, kDropBefore, utc_day(day_unix_ms))[0][0].as<int>();
}

std::vector<TelemetryRow> for_device(pqxx::work& w, const std::string& device_id,
                                     int64_t since_unix_ms, int limit) {
  std::vector<TelemetryRow> out;
  for (const auto& f : sql::run(w, kForDevice, device_id, since_unix_ms, limit)) {
    TelemetryRow r;
    r.device_id = f[0].as<std::string>();
    r.ts_unix_ms = f[1].as<int64_t>();
    r.rollout_id = opt_field<int64_t>(f[2]);
    r.artifact_sha256 = f[3].as<std::string>();
    r.inferences = f[4].as<int32_t>();
    r.latency_p50_us = f[5].as<double>();
    r.latency_p95_us = f[6].as<double>();
    r.energy_uj = f[7].as<double>();
    r.output_psi = f[8].as<double>();
    r.input_drift = f[9].as<double>();
    r.probe_accuracy = opt_field<double>(f[10]);
    r.shadow_agreement = opt_field<double>(f[11]);
    r.version = f[12].as<int16_t>();
    r.seq = f[13].as<int64_t>();
    r.failures = f[14].as<int64_t>();
    r.probe_total = f[15].as<int64_t>();
    r.probe_correct = f[16].as<int64_t>();
    r.shadow_total = f[17].as<int64_t>();
    r.shadow_agree = f[18].as<int64_t>();
    r.class_counts = from_array_text<int64_t>(f[19].as<std::string>());
    r.input_count = f[20].as<int64_t>();
    r.input_sum = from_array_text<double>(f[21].as<std::string>());
    r.input_sumsq = from_array_text<double>(f[22].as<std::string>());
    r.latency_hist = from_array_text<int64_t>(f[23].as<std::string>());
    r.active_us = f[24].as<int64_t>();
    r.energy_measured_uj = opt_field<double>(f[25]);
    r.energy_modelled_uj = f[26].as<double>();
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace tinyfleet::storage::telemetry
