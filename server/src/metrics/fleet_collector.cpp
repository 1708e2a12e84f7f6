#include "metrics/fleet_collector.h"

#include <nlohmann/json.hpp>

#include "rollouts/states.h"
#include "tinyfleet/server/compile_orchestrator.h"
#include "tinyfleet/server/device_rejects.h"
#include "tinyfleet/server/offer_builder.h"
#include "tinyfleet/server/rollout_engine.h"
#include "tinyfleet/server/telemetry_ingest.h"
#include "tinyfleet/server/update_publisher.h"

namespace tinyfleet::server::metrics {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

MetricFamily family(const char* name, const char* help, MetricType type) {
  return MetricFamily{name, help, type, {}};
}

void add(MetricFamily& f, double value, Labels labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  (f.type == MetricType::Counter ? m.counter.value : m.gauge.value) = value;
  f.metric.push_back(std::move(m));
}

void compile_metrics(CompileOrchestrator& c, std::vector<MetricFamily>& out) {
  const CompileStats s = c.stats();
  auto queue = family("tinyfleet_compile_queue", "Compile operations waiting for a worker.",
                      MetricType::Gauge);
  add(queue, static_cast<double>(s.queued));
  auto classes =
      family("tinyfleet_compile_classes_total",
             "Device classes compiled, by result (compiled or refused).", MetricType::Counter);
  add(classes, static_cast<double>(s.compiled), {{"result", "compiled"}});
  add(classes, static_cast<double>(s.refused), {{"result", "refused"}});
  auto failed = family("tinyfleet_compile_operations_failed_total",
                       "Compile operations that failed (not refusals).", MetricType::Counter);
  add(failed, static_cast<double>(s.failed));
  auto seconds = family("tinyfleet_compile_seconds_total",
                        "Time spent compiling device classes, seconds.", MetricType::Counter);
  add(seconds, s.class_seconds);
  for (auto* f : {&queue, &classes, &failed, &seconds}) out.push_back(std::move(*f));
}

void ingest_metrics(TelemetryIngest& t, std::vector<MetricFamily>& out) {
  auto msgs = family("tinyfleet_telemetry_messages_total",
                     "Telemetry messages from devices, by outcome: received, written (stored), "
                     "rejected (malformed), replayed (seq not above the device's last), "
                     "rate_limited (over the device's budget), dropped (queue full).",
                     MetricType::Counter);
  const double received = t.received(), written = t.written(), rejected = t.rejected(),
               replayed = t.replayed(), rate_limited = t.rate_limited(), dropped = t.dropped();
  add(msgs, received, {{"outcome", "received"}});
  add(msgs, written, {{"outcome", "written"}});
  add(msgs, rejected, {{"outcome", "rejected"}});
  add(msgs, replayed, {{"outcome", "replayed"}});
  add(msgs, rate_limited, {{"outcome", "rate_limited"}});
  add(msgs, dropped, {{"outcome", "dropped"}});
  auto lag =
      family("tinyfleet_telemetry_ingest_lag_messages",
             "Telemetry messages received and not yet written or discarded.", MetricType::Gauge);
  add(lag, std::max(0.0, received - written - rejected - replayed - rate_limited - dropped));
  auto lag_s = family("tinyfleet_telemetry_ingest_lag_seconds",
                      "Age of the oldest telemetry window received and not yet stored (0: none).",
                      MetricType::Gauge);
  add(lag_s, t.lag_seconds());
  auto parts = family("tinyfleet_telemetry_partitions_dropped_total",
                      "Telemetry day partitions dropped by retention (telemetry.retention_days).",
                      MetricType::Counter);
  add(parts, static_cast<double>(t.partitions_dropped()));
  out.push_back(std::move(msgs));
  out.push_back(std::move(lag));
  out.push_back(std::move(lag_s));
  out.push_back(std::move(parts));
}

void mqtt_metrics(const MetricsSources& s, std::vector<MetricFamily>& out) {
  auto in = family("tinyfleet_mqtt_messages_in_total", "MQTT messages fleetd took in, by kind.",
                   MetricType::Counter);
  if (s.ingest) add(in, static_cast<double>(s.ingest->received()), {{"kind", "telemetry"}});
  auto sent = family("tinyfleet_mqtt_messages_out_total", "MQTT messages fleetd sent, by kind.",
                     MetricType::Counter);
  if (s.engine) add(sent, static_cast<double>(s.engine->offers_published()), {{"kind", "offer"}});
  if (s.publisher) {
    add(sent, static_cast<double>(s.publisher->chunks_served()), {{"kind", "chunk"}});
    auto dropped = family("tinyfleet_update_chunk_answers_dropped_total",
                          "Chunk answers the MQTT client refused to queue (its queue full, or "
                          "not connected); the device asks again after its chunk timeout.",
                          MetricType::Counter);
    add(dropped, static_cast<double>(s.publisher->chunk_answers_dropped()));
    auto bytes = family("tinyfleet_update_bytes_served_total",
                        "Update payload bytes sent in chunks.", MetricType::Counter);
    add(bytes, static_cast<double>(s.publisher->bytes_served()));
    auto deferred = family("tinyfleet_update_chunk_requests_deferred_total",
                           "Chunk requests deferred by the rate limit.", MetricType::Counter);
    add(deferred, static_cast<double>(s.publisher->requests_deferred()));
    auto lookups = family("tinyfleet_update_payload_lookups_total",
                          "Chunk requests for a payload this replica did not hold: looked up "
                          "in device_offers (outcome looked_up), or refused without a lookup "
                          "(outcome refused: a known-unknown release or the device's lookup "
                          "rate).",
                          MetricType::Counter);
    add(lookups, static_cast<double>(s.publisher->payload_lookups()), {{"outcome", "looked_up"}});
    add(lookups, static_cast<double>(s.publisher->lookups_refused()), {{"outcome", "refused"}});
    out.push_back(std::move(bytes));
    out.push_back(std::move(deferred));
    out.push_back(std::move(lookups));
    out.push_back(std::move(dropped));
  }
  out.push_back(std::move(in));
  out.push_back(std::move(sent));
}

void device_metrics(const MetricsSources& s, std::vector<MetricFamily>& out) {
  auto rejected = family("tinyfleet_device_messages_rejected_total",
                         "Device messages dropped because they did not parse or held a value "
                         "out of range, by kind (status, telemetry, chunk_request).",
                         MetricType::Counter);
  for (auto kind : {DeviceRejects::kStatus, DeviceRejects::kTelemetry, DeviceRejects::kChunkRequest,
                    DeviceRejects::kPresence}) {
    add(rejected, static_cast<double>(s.rejects->total(kind)),
        {{"kind", DeviceRejects::name(kind)}});
  }
  out.push_back(std::move(rejected));
  if (s.engine) {
    auto dropped = family("tinyfleet_status_reports_dropped_total",
                          "Valid status reports dropped unapplied: a device's events beyond its "
                          "bound, or reports beyond the pending devices' bound.",
                          MetricType::Counter);
    add(dropped, static_cast<double>(s.engine->statuses_dropped()));
    out.push_back(std::move(dropped));
    auto leader =
        family("tinyfleet_rollouts_leader",
               "1 while this replica is the rollout engine's leader, else 0.", MetricType::Gauge);
    add(leader, s.engine->leader() ? 1 : 0);
    auto epoch =
        family("tinyfleet_rollouts_leader_epoch",
               "The lease epoch this replica last led under (0: never led).", MetricType::Gauge);
    add(epoch, static_cast<double>(s.engine->epoch()));
    auto fenced = family("tinyfleet_rollouts_writes_fenced_total",
                         "Leader writes refused because a newer leader holds the lease.",
                         MetricType::Counter);
    add(fenced, static_cast<double>(s.engine->writes_fenced()));
    auto ignored =
        family("tinyfleet_status_reports_ignored_total",
               "Status reports a follower heard and left to the leader.", MetricType::Counter);
    add(ignored, static_cast<double>(s.engine->statuses_ignored()));
    for (auto* f : {&leader, &epoch, &fenced, &ignored}) out.push_back(std::move(*f));
  }
}

void pool_metrics(const storage::PoolStats& p, std::vector<MetricFamily>& out) {
  auto conns =
      family("tinyfleet_db_pool_connections", "Database connections, by state.", MetricType::Gauge);
  add(conns, p.in_use, {{"state", "in_use"}});
  add(conns, p.size - p.in_use, {{"state", "idle"}});
  auto acq =
      family("tinyfleet_db_pool_acquisitions_total", "Transactions started.", MetricType::Counter);
  add(acq, static_cast<double>(p.acquisitions));
  auto waits = family("tinyfleet_db_pool_waits_total",
                      "Transactions that waited for a free connection.", MetricType::Counter);
  add(waits, static_cast<double>(p.waits));
  auto secs =
      family("tinyfleet_db_pool_wait_seconds_total",
             "Time transactions waited for a free connection, seconds.", MetricType::Counter);
  add(secs, p.wait_seconds);
  for (auto* f : {&conns, &acq, &waits, &secs}) out.push_back(std::move(*f));
}

// Devices, rollouts, phases and gate values, as PostgreSQL has them now.
std::vector<MetricFamily> read_fleet_state(pqxx::work& w) {
  // A device's model version is the first version whose artifact it runs (a recompile
  // that yields the same bytes is the same artifact).
  auto devices = family("tinyfleet_devices", "Devices by class, status and the model they run.",
                        MetricType::Gauge);
  for (const auto& r : w.exec(
           "SELECT d.device_class, d.status, COALESCE(x.name, ''), COALESCE(x.version::text, ''), "
           "count(*) FROM devices d LEFT JOIN LATERAL (SELECT m.name, v.version FROM artifacts a "
           "JOIN model_versions v ON v.id = a.version_id JOIN models m ON m.id = v.model_id WHERE "
           "a.artifact_sha256 = d.current_artifact_sha256 AND a.device_class = d.device_class "
           "ORDER BY v.version LIMIT 1) x ON true GROUP BY 1, 2, 3, 4")) {
    add(devices, r[4].as<double>(),
        {{"class", r[0].c_str()},
         {"status", r[1].c_str()},
         {"model", r[2].c_str()},
         {"version", r[3].c_str()}});
  }
  auto rollouts = family("tinyfleet_rollouts", "Rollouts by state.", MetricType::Gauge);
  for (const auto& r : w.exec("SELECT state, count(*) FROM rollouts GROUP BY 1")) {
    add(rollouts, r[1].as<double>(), {{"state", r[0].c_str()}});
  }
  auto phases = family("tinyfleet_rollout_phases", "Rollout phases by state.", MetricType::Gauge);
  for (const auto& r : w.exec("SELECT state, count(*) FROM rollout_phases GROUP BY 1")) {
    add(phases, r[1].as<double>(), {{"state", r[0].c_str()}});
  }
  auto enrolled =
      family("tinyfleet_rollout_devices",
             "Devices of rollouts not yet ended, by rollout and state.", MetricType::Gauge);
  auto gate = family("tinyfleet_rollout_gate_value",
                     "The latest value of each gate of rollouts not yet ended.", MetricType::Gauge);
  auto passed =
      family("tinyfleet_rollout_gate_passed",
             "1 when the gate passed at its latest evaluation, else 0.", MetricType::Gauge);
  // The states the rollout module counts as active (not a copy of its list).
  const std::string active = "r.state IN " + rollouts::sql_list(rollouts::is_active);
  for (const auto& r : w.exec(std::string("SELECT r.name, rd.state, count(*) FROM rollouts r JOIN "
                                          "rollout_devices rd ON rd.rollout_id = r.id WHERE ") +
                              active + " GROUP BY 1, 2")) {
    add(enrolled, r[2].as<double>(), {{"rollout", r[0].c_str()}, {"state", r[1].c_str()}});
  }
  for (const auto& r :
       w.exec(std::string("SELECT r.name, r.gate_report::text FROM rollouts r WHERE ") + active)) {
    for (const auto& g : nlohmann::json::parse(r[1].c_str(), nullptr, false)) {
      if (!g.is_object() || !g.value("known", false)) continue;
      const Labels labels = {
          {"rollout", r[0].c_str()}, {"metric", g.value("metric", "")}, {"op", g.value("op", "")}};
      add(gate, g.value("value", 0.0), labels);
      add(passed, g.value("passed", false) ? 1 : 0, labels);
    }
  }
  return {devices, rollouts, phases, enrolled, gate, passed};
}

}  // namespace

std::vector<MetricFamily> FleetCollector::counters() const {
  std::vector<MetricFamily> out;
  if (sources_.compiles) compile_metrics(*sources_.compiles, out);
  if (sources_.ingest) ingest_metrics(*sources_.ingest, out);
  mqtt_metrics(sources_, out);
  if (sources_.rejects) device_metrics(sources_, out);
  if (sources_.db) pool_metrics(sources_.db->pool_stats(), out);
  if (sources_.offers) {
    auto expiry = family("tinyfleet_targets_key_expiry_timestamp_seconds",
                         "When fleetd's targets (signing) key expires, Unix seconds; fleetd "
                         "signs no offer after it.",
                         MetricType::Gauge);
    add(expiry, static_cast<double>(sources_.offers->key_expires_at()));
    out.push_back(std::move(expiry));
  }
  return out;
}

std::vector<MetricFamily> FleetCollector::fleet_state() const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (sources_.db && now - read_at_ >= std::chrono::seconds(1)) {
    auto up = family("tinyfleet_database_up",
                     "1 when the last read of the fleet's state from PostgreSQL worked.",
                     MetricType::Gauge);
    auto read = sources_.db->transact([](pqxx::work& w) { return read_fleet_state(w); });
    if (read) state_ = std::move(*read);
    add(up, read ? 1 : 0);
    if (!state_.empty() && state_.back().name == "tinyfleet_database_up") state_.pop_back();
    state_.push_back(std::move(up));
    read_at_ = now;
  }
  return state_;
}

std::vector<MetricFamily> FleetCollector::Collect() const {
  auto out = counters();
  for (auto& f : fleet_state()) out.push_back(std::move(f));
  return out;
}

}  // namespace tinyfleet::server::metrics
