#include "tinyfleet/server/telemetry_ingest.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "tinyfleet/server/log.h"
#include "tinyfleet/storage/telemetry.h"
#include "tinyfleet/update/telemetry_message.h"

namespace tinyfleet::server {

const char* TelemetryIngest::out_of_range(const update::TelemetryMessage& m, uint64_t now_unix) {
  if (m.inferences > static_cast<uint32_t>(INT32_MAX)) return "telemetry.inferences: out of range";
  if (m.failures > static_cast<uint32_t>(INT32_MAX)) return "telemetry.failures: out of range";
  const float fields[] = {m.latency_p50_us, m.latency_p95_us, m.energy_uj, m.output_psi,
                          m.input_drift};
  for (float f : fields) {
    if (!std::isfinite(f)) return "telemetry: a value is not finite";
  }
  if (m.latency_p50_us < 0 || m.latency_p95_us < 0 || m.energy_uj < 0) {
    return "telemetry: a latency or energy is negative";
  }
  if (m.output_psi < 0 && m.output_psi != -1) return "telemetry.output_psi: out of range";
  if (m.input_drift < 0 && m.input_drift != -1) return "telemetry.input_drift: out of range";
  if (m.probes_correct > m.probes) return "telemetry.probes_correct: above probes";
  if (m.shadow_agree > m.shadow) return "telemetry.shadow_agree: above shadow";
  // The decoder refused impossible counts and non-finite sums; what no window can hold:
  // more than a day of inference, or a kilowatt-hour (3.6e12 uJ) of energy.
  if (m.active_us > 86400ull * 1000000) return "telemetry.active_us: above a day";
  if (m.energy_measured_uj > 3.6e12 || m.energy_modelled_uj > 3.6e12) {
    return "telemetry: energy above 1 kWh";
  }
  if (m.ts_unix > now_unix + 86400) return "telemetry.ts_unix: a day or more ahead";
  return nullptr;
}

storage::TelemetryRow TelemetryIngest::to_row(const std::string& device,
                                              const update::TelemetryMessage& m,
                                              int64_t now_unix_ms) {
  storage::TelemetryRow r;
  r.device_id = device;
  // The server's clock: windows from devices with a wrong clock still line up.
  r.ts_unix_ms = now_unix_ms;
  char sha[65];
  update::to_hex(m.artifact_sha256, 32, sha);
  r.artifact_sha256 = sha;
  r.inferences = static_cast<int32_t>(m.inferences);
  r.latency_p50_us = m.latency_p50_us;
  r.latency_p95_us = m.latency_p95_us;
  r.energy_uj = m.energy_uj;
  r.output_psi = m.output_psi;
  r.input_drift = m.input_drift;
  if (m.probes > 0) r.probe_accuracy = static_cast<double>(m.probes_correct) / m.probes;
  if (m.shadow > 0) r.shadow_agreement = static_cast<double>(m.shadow_agree) / m.shadow;
  r.version = m.version;
  // A seq above INT64_MAX is stored as its bit pattern (it only orders one device's).
  r.seq = static_cast<int64_t>(m.seq);
  r.probe_total = m.probes;
  r.probe_correct = m.probes_correct;
  r.shadow_total = m.shadow;
  r.shadow_agree = m.shadow_agree;
  if (m.version < 2) return r;
  r.failures = m.failures;
  r.class_counts.assign(m.class_counts, m.class_counts + m.classes);
  r.input_count = m.input_count;
  r.input_sum.assign(m.input_sum, m.input_sum + m.channels);
  r.input_sumsq.assign(m.input_sumsq, m.input_sumsq + m.channels);
  r.latency_hist.assign(m.latency_hist, m.latency_hist + update::kTelemetryLatencyBuckets);
  r.active_us = static_cast<int64_t>(m.active_us);
  if (m.flags & update::kTelemetryEnergyMeasured) r.energy_measured_uj = m.energy_measured_uj;
  r.energy_modelled_uj = m.energy_modelled_uj;
  return r;
}

TelemetryIngest::TelemetryIngest(storage::Database& db, size_t max_queue)
    : db_(db), max_queue_(max_queue) {}

TelemetryIngest::~TelemetryIngest() { stop(); }

void TelemetryIngest::load_last_seqs() {
  // The last seq of each device that sent a version-2 window in the last day, so a
  // replay is dropped across a fleetd restart too (older windows: the budget bounds them).
  auto seqs = db_.transact([&](pqxx::work& w) {
    std::vector<std::pair<std::string, int64_t>> out;
    for (const auto& r : w.exec("SELECT device_id, max(seq) FROM telemetry WHERE version >= 2 "
                                "AND ts > now() - interval '1 day' GROUP BY device_id LIMIT " +
                                std::to_string(limits_.max_devices))) {
      out.emplace_back(r[0].as<std::string>(), r[1].as<int64_t>());
    }
    return out;
  });
  if (!seqs) {
    log::error("telemetry.load_seqs", {{"error", seqs.error().message}});
    return;
  }
  std::lock_guard<std::mutex> lock(devices_mu_);
  for (const auto& [device, seq] : *seqs) devices_[device].last_seq = static_cast<uint64_t>(seq);
}

void TelemetryIngest::set_spool_dir(const std::string& dir) {
  auto spool = std::make_unique<TelemetrySpool>(dir);
  if (!spool->open()) return;
  std::lock_guard<std::mutex> lock(mu_);
  spool_ = std::move(spool);
}

void TelemetryIngest::start() {
  if (thread_.joinable()) return;
  load_last_seqs();
  if (spool_) {
    // What a killed fleetd had taken but not stored. Neither the writer nor the listener
    // runs yet; on_message spools each again (into this process's segments) and drops
    // what was stored (its seq is not above the device's last), then the old segments go.
    const size_t n =
        spool_->replay([this](const std::string& fleet, const std::string& device,
                              const std::string& payload) { on_message(fleet, device, payload); });
    spool_replayed_ += n;
    if (n > 0) log::info("telemetry.spool_replayed", {{"windows", n}});
  }
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void TelemetryIngest::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TelemetryIngest::reject(DeviceRejects::Kind kind, const std::string& fleet,
                             const std::string& device, const std::string& reason) {
  if (rejects_) rejects_->reject(kind, fleet, device, reason);
}

bool TelemetryIngest::admit(PerDevice& d, std::chrono::steady_clock::time_point now) {
  if (d.refilled == std::chrono::steady_clock::time_point{}) {
    d.tokens = limits_.burst;
  } else {
    const double minutes = std::chrono::duration<double>(now - d.refilled).count() / 60.0;
    d.tokens = std::min(limits_.burst, d.tokens + minutes * limits_.windows_per_minute);
  }
  d.refilled = now;
  if (d.tokens < 1) return false;
  d.tokens -= 1;
  return true;
}

void TelemetryIngest::on_message(const std::string& fleet, const std::string& device,
                                 const std::string& payload) {
  ++received_;
  update::TelemetryMessage m;
  const auto st = update::decode_telemetry(reinterpret_cast<const uint8_t*>(payload.data()),
                                           payload.size(), &m);
  const auto wall = std::chrono::system_clock::now().time_since_epoch();
  const char* wrong =
      st.ok() ? out_of_range(m, static_cast<uint64_t>(
                                    std::chrono::duration_cast<std::chrono::seconds>(wall).count()))
              : nullptr;
  if (!st.ok() || wrong) {
    ++rejected_;
    reject(
        DeviceRejects::kTelemetry, fleet, device,
        st.ok() ? std::string(wrong) : std::string(st.field) + ": " + update::to_string(st.error));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(devices_mu_);
    if (devices_.size() >= limits_.max_devices && !devices_.count(device)) devices_.clear();
    PerDevice& d = devices_[device];
    // Version 1 (old devices) numbers windows from 1 at each boot: no replay check.
    if (m.version >= 2 && m.seq <= d.last_seq) {
      ++replayed_;
      reject(DeviceRejects::kTelemetry, fleet, device,
             "telemetry.seq: " + std::to_string(m.seq) + " is not above " +
                 std::to_string(d.last_seq) + " (replayed or old)");
      return;
    }
    if (!admit(d, std::chrono::steady_clock::now())) {
      ++rate_limited_;
      reject(DeviceRejects::kTelemetry, fleet, device,
             "telemetry: over the device's window rate (telemetry.device_windows_per_minute)");
      return;
    }
    if (m.version >= 2) d.last_seq = m.seq;
  }
  storage::TelemetryRow r =
      to_row(device, m, std::chrono::duration_cast<std::chrono::milliseconds>(wall).count());
  std::lock_guard<std::mutex> lock(mu_);
  if (queue_.size() >= max_queue_) {
    ++dropped_;
    return;
  }
  if (auto it = rollout_of_.find(device); it != rollout_of_.end()) r.rollout_id = it->second;
  queue_.push_back(std::move(r));
  if (spool_) spool_->append(fleet, device, payload);
  if (queue_.size() >= 2000) cv_.notify_one();
}

void TelemetryIngest::apply_retention() {
  if (limits_.retention_days <= 0) return;
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const int64_t before = now_ms - int64_t{limits_.retention_days} * 86400000;
  auto n = db_.transact(
      [&](pqxx::work& w) { return storage::telemetry::drop_partitions_before(w, before); });
  if (!n) {
    log::error("telemetry.retention", {{"error", n.error().message}});
    return;
  }
  partitions_dropped_ += static_cast<uint64_t>(*n);
  if (*n > 0) {
    log::info("telemetry.retention",
              {{"partitions_dropped", *n}, {"retention_days", limits_.retention_days}});
  }
}

void TelemetryIngest::refresh_rollouts() {
  auto map = db_.transact([](pqxx::work& w) {
    std::map<std::string, int64_t> m;
    for (const auto& row :
         // A device's one active rollout (migration 0010's marker; the rollout module keeps
         // it), not a list of states of our own.
         w.exec("SELECT device_id, rollout_id FROM rollout_devices WHERE active")) {
      m[row[0].as<std::string>()] = row[1].as<int64_t>();
    }
    return m;
  });
  if (!map) return;
  std::lock_guard<std::mutex> lock(mu_);
  rollout_of_ = std::move(*map);
}

double TelemetryIngest::lag_seconds() {
  int64_t oldest = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Rows keep their order: a batch being written is older than the queue, and a
    // batch put back for a retry goes to the queue's head.
    oldest = writing_oldest_ms_ != 0 ? writing_oldest_ms_
             : queue_.empty()        ? 0
                                     : queue_.front().ts_unix_ms;
  }
  if (oldest == 0) return 0;
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  return std::max<int64_t>(0, now_ms - oldest) / 1000.0;
}

void TelemetryIngest::run() {
  auto last_refresh = std::chrono::steady_clock::time_point{};
  auto last_retention = std::chrono::steady_clock::time_point{};
  bool retrying = false;  // the last write found the database away
  for (;;) {
    std::vector<storage::TelemetryRow> batch;
    std::vector<uint64_t> segments;  // the spool's records of `batch`
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(retrying ? 1000 : 250),
                   [&] { return stop_ || (!retrying && queue_.size() >= 2000); });
      batch.swap(queue_);
      writing_oldest_ms_ = batch.empty() ? 0 : batch.front().ts_unix_ms;
      segments.swap(queued_segments_);
      if (spool_) segments.push_back(spool_->seal());
      stopping = stop_;
    }
    if (!batch.empty()) {
      auto done = db_.transact([&](pqxx::work& w) {
        storage::telemetry::insert_batch(w, batch);
        return batch.size();
      });
      retrying = false;
      if (done) {
        written_ += *done;
        std::lock_guard<std::mutex> lock(mu_);
        if (spool_) spool_->remove(segments);
      } else if (done.error().code == storage::ErrorCode::kUnavailable && !stopping) {
        // The database is away (a restart): the windows wait for it, in the queue's bound
        // (the batch rolled back whole, so nothing is stored twice).
        retrying = true;
        log::warn("telemetry.write", {{"rows", batch.size()}, {"error", done.error().message}});
        std::lock_guard<std::mutex> lock(mu_);
        const size_t room = max_queue_ > queue_.size() ? max_queue_ - queue_.size() : 0;
        if (batch.size() > room) {
          dropped_ += batch.size() - room;
          batch.erase(batch.begin(), batch.begin() + static_cast<ptrdiff_t>(batch.size() - room));
        }
        queue_.insert(queue_.begin(), std::make_move_iterator(batch.begin()),
                      std::make_move_iterator(batch.end()));
        queued_segments_.insert(queued_segments_.begin(), segments.begin(), segments.end());
      } else {
        dropped_ += batch.size();
        log::error("telemetry.write", {{"rows", batch.size()}, {"error", done.error().message}});
        std::lock_guard<std::mutex> lock(mu_);
        if (spool_) spool_->remove(segments);
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_oldest_ms_ = 0;  // written, dropped, or back at the queue's head
    }
    if (stopping) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_refresh > std::chrono::seconds(2)) {
      refresh_rollouts();
      last_refresh = now;
    }
    if (last_retention == std::chrono::steady_clock::time_point{} ||
        now - last_retention > std::chrono::hours(1)) {
      apply_retention();
      last_retention = now;
    }
  }
}

}  // namespace tinyfleet::server
