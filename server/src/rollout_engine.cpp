#include "tinyfleet/server/rollout_engine.h"

#include <chrono>
#include <cmath>

#include <pqxx/pqxx>

#include "tinyfleet/server/gate_expression.h"
#include "tinyfleet/server/log.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/update/status_message.h"

namespace tinyfleet::server {

namespace {

constexpr int64_t kLeaderLock = 0x74666c72;  // "tflr"

std::string status_of(const std::string& state) {
  if (state == "Offered" || state == "Downloading" || state == "Verifying" || state == "Patching" ||
      state == "SelfTest") {
    return "updating";
  }
  return "online";
}

}  // namespace

RolloutEngine::RolloutEngine(storage::Database& db, std::string database_uri,
                             UpdatePublisher& publisher, OfferBuilder& builder, double tick_seconds)
    : db_(db),
      uri_(std::move(database_uri)),
      publisher_(publisher),
      builder_(builder),
      tick_seconds_(tick_seconds) {}

RolloutEngine::~RolloutEngine() { stop(); }

void RolloutEngine::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void RolloutEngine::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  lock_conn_.reset();
  leader_ = false;
}

void RolloutEngine::wake() {
  std::lock_guard<std::mutex> lock(mu_);
  woken_ = true;
  cv_.notify_all();
}

void RolloutEngine::on_status(const std::string& fleet, const std::string& device,
                              const std::string& payload) {
  std::lock_guard<std::mutex> lock(mu_);
  if (statuses_.size() > 100000) statuses_.pop_front();  // bounded; retained ones come again
  statuses_.push_back({fleet, device, payload});
}

bool RolloutEngine::try_lead() {
  try {
    if (!lock_conn_) lock_conn_ = std::make_unique<pqxx::connection>(uri_);
    pqxx::nontransaction n(*lock_conn_);
    const bool got = n.exec_params1("SELECT pg_try_advisory_lock($1)", kLeaderLock)[0].as<bool>();
    return got;
  } catch (const std::exception& e) {
    lock_conn_.reset();
    log::warn("rollouts.leader_lock", {{"error", e.what()}});
    return false;
  }
}

void RolloutEngine::run() {
  auto last_try = std::chrono::steady_clock::time_point{};
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::duration<double>(tick_seconds_),
                   [&] { return stop_ || woken_; });
      if (stop_) return;
      woken_ = false;
    }
    if (!leader_) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last_try < std::chrono::seconds(1)) continue;
      last_try = now;
      if (!try_lead()) continue;
      leader_ = true;
      log::info("rollouts.leader", {{"lock", kLeaderLock}});
      recover();
    }
    try {
      // Leadership lasts as long as the lock's connection.
      pqxx::nontransaction n(*lock_conn_);
      n.exec("SELECT 1");
    } catch (const std::exception& e) {
      log::warn("rollouts.leadership_lost", {{"error", e.what()}});
      leader_ = false;
      lock_conn_.reset();
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const size_t pending = [&] {
      std::lock_guard<std::mutex> lock(mu_);
      return statuses_.size();
    }();
    apply_statuses();
    const auto t1 = std::chrono::steady_clock::now();
    tick();
    const auto t2 = std::chrono::steady_clock::now();
    const auto ms = [](auto d) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    };
    if (t2 - t0 > std::chrono::milliseconds(500)) {
      log::warn("rollouts.slow_tick",
                {{"statuses", pending}, {"statuses_ms", ms(t1 - t0)}, {"tick_ms", ms(t2 - t1)}});
    }
  }
}

void RolloutEngine::recover() {
  auto outstanding = db_.transact([](pqxx::work& w) {
    std::vector<std::tuple<std::string, std::string, uint64_t, std::string, std::string>> out;
    for (const auto& row :
         w.exec("SELECT o.device_id, d.fleet, o.release_seq, o.offer, o.payload_sha256 "
                "FROM device_offers o JOIN devices d ON d.id = o.device_id "
                "JOIN rollout_devices rd ON rd.device_id = o.device_id AND rd.rollout_id = "
                "o.rollout_id "
                "JOIN rollouts r ON r.id = o.rollout_id "
                "WHERE r.state IN ('running','paused','rolling_back') "
                "AND rd.state IN ('offered','reverting')")) {
      out.emplace_back(row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<uint64_t>(),
                       pqxx::binarystring(row[3]).str(), row[4].as<std::string>());
    }
    return out;
  });
  if (!outstanding) {
    log::error("rollouts.recover", {{"error", outstanding.error().message}});
    return;
  }
  storage::PgBlobStore blobs(db_);
  size_t republished = 0;
  for (const auto& [device, fleet, release, offer, payload_sha] : *outstanding) {
    auto payload = blobs.get(payload_sha);
    if (!payload) continue;
    if (publisher_.offer(fleet, device, release, offer, *payload)) ++republished;
  }
  log::info("rollouts.recovered", {{"offers_republished", republished}});
}

void RolloutEngine::apply_statuses() {
  std::deque<Status> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(statuses_);
  }
  if (batch.empty()) return;
  struct Report {
    std::string fleet, device, event, state, artifact, detail;
    int64_t release = 0, failed_release = 0;
    update::OfferStatus refusal = update::OfferStatus::kOk;
  };
  std::vector<Report> reports;
  std::map<std::pair<std::string, std::string>, size_t> last;  // (fleet, device) -> index
  for (const auto& s : batch) {
    update::StatusMessage m;
    if (!update::decode_status(reinterpret_cast<const uint8_t*>(s.payload.data()), s.payload.size(),
                               &m)
             .ok()) {
      continue;
    }
    char artifact[65] = "";
    if (m.has_artifact) update::to_hex(m.artifact_sha256, 32, artifact);
    last[{s.fleet, s.device}] = reports.size();
    reports.push_back({s.fleet, s.device, update::to_string(m.event), update::to_string(m.state),
                       artifact, m.detail, static_cast<int64_t>(m.release),
                       static_cast<int64_t>(m.failed_release), m.refusal});
  }
  auto done = db_.transact([&](pqxx::work& w) {
    int changed = 0;
    for (size_t i = 0; i < reports.size(); ++i) {
      const Report& s = reports[i];
      // A report carries the device's whole state, so of a device's reports in one batch
      // only the last matters, besides refusals and rollbacks (events a later report
      // need not repeat).
      if (last.at({s.fleet, s.device}) != i && s.event != "offer_refused" &&
          s.state != "RolledBack") {
        continue;
      }
      const std::string& event = s.event;
      const std::string& state = s.state;
      const std::string& artifact = s.artifact;
      const std::string& detail = s.detail;
      const int64_t release = s.release;
      const int64_t failed_release = s.failed_release;
      w.exec_params(
          "UPDATE devices SET current_artifact_sha256 = NULLIF($2, ''), last_seen = now(), "
          "status = $3 WHERE id = $1 AND fleet = $4",
          s.device, artifact, status_of(state), s.fleet);
      const char* active =
          "rollout_id IN (SELECT id FROM rollouts WHERE state IN "
          "('running','paused','rolling_back'))";
      // The target is installed (reported by any event naming it).
      changed += w.exec_params(std::string("UPDATE rollout_devices SET state = 'updated', "
                                           "updated_at_device = now(), updated_at = now() "
                                           "WHERE device_id = $1 AND state = 'offered' AND "
                                           "target_artifact = $2 AND release_seq <= $3 AND ") +
                                   active,
                               s.device, artifact, release)
                     .affected_rows();
      if (state == "RolledBack" && failed_release > 0) {
        changed += w.exec_params(std::string("UPDATE rollout_devices SET state = 'failed', "
                                             "error = $3, updated_at = now() WHERE device_id = "
                                             "$1 AND state = 'offered' AND release_seq = $2 AND ") +
                                     active,
                                 s.device, failed_release, detail)
                       .affected_rows();
        changed += w.exec_params(std::string("UPDATE rollout_devices SET state = 'failed', "
                                             "error = 'returning to the previous model failed: ' "
                                             "|| $3, updated_at = now() WHERE device_id = $1 AND "
                                             "state = 'reverting' AND revert_release = $2 AND ") +
                                     active,
                                 s.device, failed_release, detail)
                       .affected_rows();
      }
      if (event == "offer_refused") {
        // A base that is not what the device runs: offer again from what it reported.
        const bool base = s.refusal == update::OfferStatus::kBaseMismatch;
        changed += w.exec_params(std::string("UPDATE rollout_devices SET state = $2, error = $3, "
                                             "updated_at = now() WHERE device_id = $1 AND "
                                             "state = 'offered' AND ") +
                                     active,
                                 s.device, base ? "pending" : "failed", "refused: " + detail)
                       .affected_rows();
      }
      changed += w.exec_params(std::string("UPDATE rollout_devices SET state = 'rolled_back', "
                                           "updated_at = now() WHERE device_id = $1 AND state = "
                                           "'reverting' AND base_artifact = $2 AND "
                                           "revert_release <= $3 AND ") +
                                   active,
                               s.device, artifact, release)
                     .affected_rows();
    }
    return changed;
  });
  if (!done) log::error("rollouts.status", {{"error", done.error().message}});
}

void RolloutEngine::tick() {
  auto active = db_.transact([](pqxx::work& w) {
    std::vector<RolloutEngine::Active> out;
    for (const auto& row :
         w.exec("SELECT r.id, r.name, r.fleet, r.state, COALESCE(r.gates->>'text', ''), "
                "r.on_gate_failure, r.reason, m.name, r.rate_per_minute, r.current_phase, "
                "(SELECT count(*) FROM rollout_phases p WHERE p.rollout_id = r.id), r.version_id, "
                "v.version FROM rollouts r JOIN model_versions v ON v.id = r.version_id "
                "JOIN models m ON m.id = v.model_id "
                "WHERE r.state IN ('running','rolling_back') ORDER BY r.id")) {
      RolloutEngine::Active a;
      a.id = row[0].as<int64_t>();
      a.name = row[1].as<std::string>();
      a.fleet = row[2].as<std::string>();
      a.state = row[3].as<std::string>();
      a.gates = row[4].as<std::string>();
      a.on_failure = row[5].as<std::string>();
      a.reason = row[6].as<std::string>();
      a.model = row[7].as<std::string>();
      a.rate = row[8].as<int>();
      a.phase = row[9].as<int>();
      a.phases = row[10].as<int>();
      a.version_id = row[11].as<int64_t>();
      a.version = row[12].as<uint32_t>();
      out.push_back(a);
    }
    return out;
  });
  if (!active) return;
  for (const auto& r : *active) {
    try {
      if (r.state == "running") {
        step_running(r);
      } else {
        step_rolling_back(r);
      }
    } catch (const std::exception& e) {
      log::error("rollouts.step", {{"rollout", r.name}, {"error", e.what()}});
    }
  }
}

}  // namespace tinyfleet::server
