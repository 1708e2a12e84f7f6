#include "tinyfleet/server/telemetry_ingest.h"

#include <chrono>
#include <cmath>

#include "tinyfleet/server/log.h"
#include "tinyfleet/storage/telemetry.h"
#include "tinyfleet/update/telemetry_message.h"

namespace tinyfleet::server {

const char* TelemetryIngest::out_of_range(const update::TelemetryMessage& m) {
  if (m.inferences > static_cast<uint32_t>(INT32_MAX)) return "telemetry.inferences: out of range";
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
  return nullptr;
}

TelemetryIngest::TelemetryIngest(storage::Database& db, size_t max_queue)
    : db_(db), max_queue_(max_queue) {}

TelemetryIngest::~TelemetryIngest() { stop(); }

void TelemetryIngest::start() {
  if (thread_.joinable()) return;
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

void TelemetryIngest::on_message(const std::string& fleet, const std::string& device,
                                 const std::string& payload) {
  ++received_;
  update::TelemetryMessage m;
  const auto st = update::decode_telemetry(reinterpret_cast<const uint8_t*>(payload.data()),
                                           payload.size(), &m);
  const char* wrong = st.ok() ? out_of_range(m) : nullptr;
  if (!st.ok() || wrong) {
    ++rejected_;
    if (rejects_) {
      rejects_->reject(DeviceRejects::kTelemetry, fleet, device,
                       st.ok() ? std::string(wrong)
                               : std::string(st.field) + ": " + update::to_string(st.error));
    }
    return;
  }
  storage::TelemetryRow r;
  r.device_id = device;
  // The server's clock: windows from devices with a wrong clock still line up.
  r.ts_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
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
  std::lock_guard<std::mutex> lock(mu_);
  if (queue_.size() >= max_queue_) {
    ++dropped_;
    return;
  }
  if (auto it = rollout_of_.find(device); it != rollout_of_.end()) r.rollout_id = it->second;
  queue_.push_back(std::move(r));
  if (queue_.size() >= 2000) cv_.notify_one();
}

void TelemetryIngest::refresh_rollouts() {
  auto map = db_.transact([](pqxx::work& w) {
    std::map<std::string, int64_t> m;
    for (const auto& row :
         w.exec("SELECT rd.device_id, rd.rollout_id FROM rollout_devices rd JOIN rollouts r "
                "ON r.id = rd.rollout_id WHERE r.state IN ('running','paused','rolling_back')")) {
      m[row[0].as<std::string>()] = row[1].as<int64_t>();
    }
    return m;
  });
  if (!map) return;
  std::lock_guard<std::mutex> lock(mu_);
  rollout_of_ = std::move(*map);
}

void TelemetryIngest::run() {
  auto last_refresh = std::chrono::steady_clock::time_point{};
  for (;;) {
    std::vector<storage::TelemetryRow> batch;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(250),
                   [&] { return stop_ || queue_.size() >= 2000; });
      batch.swap(queue_);
      stopping = stop_;
    }
    if (!batch.empty()) {
      auto done = db_.transact([&](pqxx::work& w) {
        storage::telemetry::insert_batch(w, batch);
        return batch.size();
      });
      if (done) {
        written_ += *done;
      } else {
        dropped_ += batch.size();
        log::error("telemetry.write", {{"rows", batch.size()}, {"error", done.error().message}});
      }
    }
    if (stopping) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_refresh > std::chrono::seconds(2)) {
      refresh_rollouts();
      last_refresh = now;
    }
  }
}

}  // namespace tinyfleet::server
