#include "tinyfleet/server/device_presence.h"

#include <algorithm>
#include <vector>

#include "tinyfleet/server/device_rejects.h"
#include "tinyfleet/server/log.h"
#include "tinyfleet/storage/array_literal.h"
#include "tinyfleet/update/presence_message.h"

namespace tinyfleet::server {

namespace {
constexpr size_t kMaxPending = 1 << 20;  // far above any fleet; a flood cannot grow it more

std::chrono::seconds touch_every_for(std::chrono::seconds offline_after) {
  if (offline_after.count() <= 0) return std::chrono::seconds(30);
  return std::clamp(offline_after / 10, std::chrono::seconds(1), std::chrono::seconds(30));
}

}  // namespace

DevicePresence::DevicePresence(storage::Database& db, std::chrono::seconds offline_after,
                               DeviceRejects* rejects)
    : db_(db),
      offline_after_(offline_after),
      touch_every_(touch_every_for(offline_after)),
      rejects_(rejects) {}

DevicePresence::~DevicePresence() { stop(); }

void DevicePresence::start() {
  worker_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, std::chrono::seconds(1));
      if (stopping_) break;
      lock.unlock();
      apply();
      lock.lock();
    }
  });
}

void DevicePresence::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void DevicePresence::on_presence(const std::string& fleet, const std::string& device,
                                 const std::string& payload) {
  update::PresenceMessage m;
  const auto st =
      update::decode_presence(reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), &m);
  if (!st.ok()) {
    if (rejects_) {
      rejects_->reject(DeviceRejects::kPresence, fleet, device,
                       std::string(st.field) + ": " + update::to_string(st.error));
    }
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (pending_.size() >= kMaxPending && !pending_.count(device)) return;
  pending_[device] = m.presence == update::Presence::kOnline ? Event::kOnline : Event::kOffline;
}

void DevicePresence::heard(const std::string& device) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pending_.count(device)) return;  // an online/offline event stays: the device's own word
  if (auto t = touched_.find(device);
      t != touched_.end() && std::chrono::steady_clock::now() - t->second < touch_every_) {
    ++touches_skipped_;
    return;
  }
  if (pending_.size() >= kMaxPending) return;
  pending_.emplace(device, Event::kHeard);
}

int DevicePresence::apply() {
  std::map<std::string, Event> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(pending_);
  }
  std::vector<std::string> alive, gone;
  for (const auto& [device, e] : batch) (e == Event::kOffline ? gone : alive).push_back(device);
  // Rows are locked in (fleet, id) order, the order the rollout leader applies status
  // reports in (another replica's): two batches over the same devices then wait for each
  // other instead of deadlocking (an UPDATE alone locks in whatever order it scans).
  const auto in_order = [](const std::string& where) {
    return "id IN (SELECT id FROM devices WHERE " + where + " ORDER BY fleet, id FOR UPDATE)";
  };
  auto changed = db_.transact([&](pqxx::work& w) {
    int n = 0;
    if (!alive.empty()) {
      // Heard from: seen now; back online unless an update is in progress.
      n += w.exec_params(
                "UPDATE devices SET last_seen = now(), status = CASE WHEN status IN "
                "('offline', 'provisioned') THEN 'online' ELSE status END WHERE " +
                    in_order("id = ANY($1::text[])"),
                storage::text_array_literal(alive))
               .affected_rows();
    }
    if (!gone.empty()) {
      n += w.exec_params(
                "UPDATE devices SET status = 'offline' WHERE " + in_order("id = ANY($1::text[])"),
                storage::text_array_literal(gone))
               .affected_rows();
    }
    if (offline_after_.count() > 0) {
      n += w.exec_params(
                "UPDATE devices SET status = 'offline' WHERE " +
                    in_order("status IN ('online', 'updating', 'no_model') AND (last_seen IS "
                             "NULL OR last_seen < now() - make_interval(secs => $1))"),
                // A device heard since its last write may be touch_every_ behind.
                static_cast<double>((offline_after_ + touch_every_).count()))
               .affected_rows();
    }
    return n;
  });
  std::lock_guard<std::mutex> lock(mu_);
  if (!changed) {
    log::warn("presence.apply_failed", {{"error", changed.error().message}});
    for (auto& [device, e] : batch) pending_.emplace(device, e);  // kept for the next round
    return 0;
  }
  const auto now = std::chrono::steady_clock::now();
  if (touched_.size() + alive.size() > kMaxPending) touched_.clear();
  for (const auto& device : alive) touched_[device] = now;
  // Heard again after offline: written at once (back online).
  for (const auto& device : gone) touched_.erase(device);
  return *changed;
}

}  // namespace tinyfleet::server
