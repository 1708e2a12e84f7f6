#include "tinyfleet/server/rollout_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <pqxx/pqxx>

#include "rollouts/repository.h"
#include "rollouts/status_batch.h"
#include "rollouts/status_report.h"
#include "tinyfleet/server/log.h"
#include "tinyfleet/storage/blob_store.h"

namespace tinyfleet::server {

namespace {

constexpr int64_t kLeaderLock = 0x74666c72;  // "tflr"

// A report whose effect a later report does not carry.
bool is_event(const rollouts::StatusReport& r) {
  return r.event == update::StatusEvent::kOfferRefused ||
         r.state == update::UpdateState::kRolledBack || r.state == update::UpdateState::kNoModel;
}

}  // namespace

RolloutEngine::RolloutEngine(storage::Database& db, std::string database_uri,
                             UpdatePublisher& publisher, OfferBuilder& builder, double tick_seconds,
                             GatePolicy gates)
    : db_(db),
      uri_(std::move(database_uri)),
      publisher_(publisher),
      builder_(builder),
      tick_seconds_(tick_seconds),
      gates_(gates) {}

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

bool RolloutEngine::on_status(const std::string& fleet, const std::string& device,
                              const std::string& payload) {
  auto parsed = rollouts::parse_status_report(payload);
  if (!parsed) {
    ++statuses_rejected_;
    if (rejects_) rejects_->reject(DeviceRejects::kStatus, fleet, device, parsed.error().message);
    return false;
  }
  Report report = std::make_shared<const rollouts::StatusReport>(std::move(*parsed));
  std::lock_guard<std::mutex> lock(mu_);
  if (!leader_) {
    ++statuses_ignored_;  // the leader has it too; a new leader hears it again (retained)
    return true;
  }
  auto it = pending_.find({fleet, device});
  if (it == pending_.end()) {
    if (pending_.size() >= kMaxDevicesPending) {
      ++statuses_dropped_;
      return false;
    }
    it = pending_.emplace(std::make_pair(fleet, device), Pending{}).first;
  }
  Pending& p = it->second;
  if (p.latest && is_event(*p.latest)) {
    if (p.events.size() >= kMaxEventsPerDevice) {
      p.events.pop_front();
      ++statuses_dropped_;
    }
    p.events.push_back(std::move(p.latest));
  }
  p.latest = std::move(report);
  return true;
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

void RolloutEngine::lose_leadership() {
  lock_conn_.reset();  // gives the lock up, if this session still held it
  std::lock_guard<std::mutex> lock(mu_);
  leader_ = false;
  pending_.clear();  // the new leader hears these reports again (retained)
}

void RolloutEngine::hold_lease(pqxx::work& w) { rollouts::repo::hold_lease(w, epoch_); }

void RolloutEngine::check_fenced(const storage::Error& error) {
  if (error.message.rfind(rollouts::repo::kFenced, 0) != 0) return;
  ++fenced_;
  log::warn("rollouts.fenced", {{"epoch", epoch_.load()}, {"error", error.message}});
  if (leader_) lose_leadership();
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
      auto epoch = db_.transact([](pqxx::work& w) { return rollouts::repo::take_lease(w); });
      if (!epoch) {
        log::warn("rollouts.lease", {{"error", epoch.error().message}});
        lock_conn_.reset();  // gives the lock up: another replica may take it
        continue;
      }
      epoch_ = *epoch;
      {
        std::lock_guard<std::mutex> lock(mu_);
        leader_ = true;  // reports are kept from here on
      }
      log::info("rollouts.leader", {{"lock", kLeaderLock}, {"epoch", *epoch}});
      if (on_leadership_) on_leadership_();
      connections_seen_ = publisher_.connections();
      recover("leadership");
    }
    try {
      // Leadership lasts as long as the lock's connection.
      pqxx::nontransaction n(*lock_conn_);
      n.exec("SELECT 1");
    } catch (const std::exception& e) {
      log::warn("rollouts.leadership_lost", {{"error", e.what()}});
      lose_leadership();
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const size_t pending = [&] {
      std::lock_guard<std::mutex> lock(mu_);
      return pending_.size();
    }();
    republish_if_needed();
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

void RolloutEngine::republish_if_needed() {
  const uint64_t connections = publisher_.connections();
  const auto now = std::chrono::steady_clock::now();
  if (connections != connections_seen_) {
    connections_seen_ = connections;
    republished_at_ = now;
    recover("reconnect");
  } else if (now - republished_at_ >= std::chrono::seconds(republish_ ? 2 : 5)) {
    // The outbox: offers stored but not acknowledged by the broker (a failed publish,
    // or a crash between the commit and the PUBACK).
    republished_at_ = now;
    recover("retry", /*unpublished_only=*/true);
  }
  if (resend_every_.count() > 0 && now - resent_at_ >= resend_every_) {
    resent_at_ = now;
    recover("resend", /*unpublished_only=*/false, resend_every_);
  }
}

void RolloutEngine::recover(const char* why, bool unpublished_only,
                            std::chrono::seconds published_before) {
  republish_ = false;
  auto outstanding = db_.transact([&](pqxx::work& w) {
    return rollouts::repo::outstanding(w, unpublished_only, published_before.count());
  });
  if (!outstanding) {
    log::error("rollouts.recover", {{"error", outstanding.error().message}});
    republish_ = true;
    return;
  }
  if ((unpublished_only || published_before.count() > 0) && outstanding->empty()) return;
  storage::PgBlobStore blobs(db_);
  std::vector<std::pair<std::string, uint64_t>> acked;
  for (const auto& o : *outstanding) {
    auto payload = blobs.get(o.payload_sha256);
    if (!payload) {
      republish_ = true;  // the database went away while reading
      continue;
    }
    if (publisher_.offer(o.fleet, o.device, o.release, o.offer, *payload)) {
      acked.emplace_back(o.device, o.release);
    } else {
      republish_ = true;  // the broker is away again: retry
    }
  }
  mark_published(acked);
  log::info("rollouts.recovered", {{"why", why},
                                   {"offers_outstanding", outstanding->size()},
                                   {"offers_republished", acked.size()}});
}

void RolloutEngine::mark_published(const std::vector<std::pair<std::string, uint64_t>>& acked) {
  if (acked.empty()) return;
  auto marked = lead([&](pqxx::work& w) { return rollouts::repo::mark_published(w, acked); });
  if (!marked) {
    // They stay in the outbox and go out once more: the same retained message.
    log::warn("rollouts.outbox", {{"acked", acked.size()}, {"error", marked.error().message}});
    republish_ = true;
  }
}

void RolloutEngine::apply_statuses() {
  using Batch = std::map<std::pair<std::string, std::string>, Pending>;
  Batch batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(pending_);
  }
  if (batch.empty()) return;
  // The plain reports (nearly all) go in three statements for the batch; a device with a
  // refusal or a rollback goes alone (repo::apply_status), in transactions of at most
  // kEventDevicesPerCommit devices, so a storm of them (devices rolling back together)
  // does not hold every device of the batch locked until the last is done (presence
  // waited 25 s behind 2,000 of them: docs/scale.md).
  constexpr size_t kEventDevicesPerCommit = 100;
  std::vector<Batch::value_type*> plain, events;
  for (auto& entry : batch) {
    const Pending& p = entry.second;
    (p.events.empty() && rollouts::repo::plain(*p.latest) ? plain : events).push_back(&entry);
  }
  apply_status_group(plain, true);
  for (size_t at = 0; at < events.size(); at += kEventDevicesPerCommit) {
    const auto end = events.begin() +
                     static_cast<ptrdiff_t>(std::min(events.size(), at + kEventDevicesPerCommit));
    apply_status_group({events.begin() + static_cast<ptrdiff_t>(at), end}, false);
  }
}

void RolloutEngine::apply_status_group(
    const std::vector<std::pair<const std::pair<std::string, std::string>, Pending>*>& group,
    bool plain) {
  if (group.empty()) return;
  // A report carries the device's whole state, so of a device's reports only the last
  // matters, besides refusals and rollbacks before it.
  const auto apply = [](pqxx::work& w, const std::pair<std::string, std::string>& key,
                        const Pending& p) {
    int changed = 0;
    for (const auto& e : p.events) {
      changed += rollouts::repo::apply_status(w, key.first, key.second, *e, false);
    }
    return changed + rollouts::repo::apply_status(w, key.first, key.second, *p.latest, true);
  };
  const auto keep = [this](std::pair<std::string, std::string> key, Pending p) {
    // For the next tick (the database may be back), unless the device sent newer.
    std::lock_guard<std::mutex> lock(mu_);
    pending_.emplace(std::move(key), std::move(p));
  };
  // The devices' rows locked first, in (fleet, id) order as presence locks them, so the
  // two wait for each other instead of deadlocking.
  auto done = db_.transact([&](pqxx::work& w) {
    std::vector<std::string> ids;
    for (const auto* e : group) ids.push_back(e->first.second);
    rollouts::repo::lock_devices(w, ids);
    if (plain) {
      std::vector<rollouts::repo::PlainStatus> reports;
      for (const auto* e : group) {
        reports.push_back({e->first.first, e->first.second, e->second.latest.get()});
      }
      return rollouts::repo::apply_plain_statuses(w, reports);
    }
    int changed = 0;
    for (const auto* e : group) changed += apply(w, e->first, e->second);
    return changed;
  });
  if (done) return;
  log::error("rollouts.status", {{"error", done.error().message}});
  if (done.error().code == storage::ErrorCode::kUnavailable) {
    for (auto* e : group) keep(e->first, std::move(e->second));
    return;
  }
  // Whatever the database refused must not hold the other devices' reports: each device
  // alone, and a device whose reports are refused loses them (counted).
  for (auto* e : group) {
    auto one = db_.transact([&](pqxx::work& w) { return apply(w, e->first, e->second); });
    if (one) continue;
    if (one.error().code == storage::ErrorCode::kUnavailable) {
      keep(e->first, std::move(e->second));
    } else {
      ++statuses_rejected_;
      if (rejects_) {
        rejects_->reject(DeviceRejects::kStatus, e->first.first, e->first.second,
                         "the database refused the report: " + one.error().message);
      }
    }
  }
}

void RolloutEngine::tick() {
  auto active = db_.transact([](pqxx::work& w) { return rollouts::repo::driven(w); });
  if (!active) return;
  for (const auto& r : *active) {
    if (!leader_) return;  // fenced: a newer leader drives them
    try {
      if (after_read_) after_read_(r.id);
      if (r.state == rollouts::RolloutState::kRunning) {
        step_running(r);
      } else {
        step_reverting(r);
      }
    } catch (const std::exception& e) {
      log::error("rollouts.step", {{"rollout", r.name}, {"error", e.what()}});
    }
  }
}

}  // namespace tinyfleet::server
