#include "tinyfleet/server/denial_audit.h"

#include <ctime>

#include <nlohmann/json.hpp>

#include "tinyfleet/server/log.h"
#include "tinyfleet/storage/audit_log.h"

namespace tinyfleet::server {

namespace {
std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}
}  // namespace

DenialAudit::DenialAudit(storage::Database& db, std::chrono::milliseconds every)
    : db_(db), every_(every), thread_([this] { loop(); }) {}

DenialAudit::~DenialAudit() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  flush();
}

void DenialAudit::record(const std::string& actor, const std::string& action,
                         const std::string& method, const std::string& peer,
                         const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  Key key{actor, action, method};
  auto it = counts_.find(key);
  if (it == counts_.end()) {
    if (counts_.size() >= kMaxKeys) key = Key{"*", action, "*"};
    it = counts_.try_emplace(key).first;
    if (it->second.count == 0) it->second.since = utc_now();
  }
  ++it->second.count;
  it->second.peer = peer;
  it->second.reason = reason.substr(0, 256);
}

void DenialAudit::flush() {
  std::lock_guard<std::mutex> one(flush_mu_);
  std::map<Key, Count> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(counts_);
  }
  if (batch.empty()) return;
  auto r = db_.transact([&](pqxx::work& w) {
    for (const auto& [key, c] : batch) {
      const auto& [actor, action, method] = key;
      const nlohmann::json details = {
          {"count", c.count}, {"peer", c.peer}, {"reason", c.reason}, {"since", c.since}};
      // Invalid UTF-8 (a peer string, say) is replaced rather than thrown on.
      storage::audit_log::append(
          w, {actor, action, "method/" + method,
              details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
    }
    return storage::Done{};
  });
  if (!r) {
    log::warn("auth.denials_not_audited",
              {{"keys", static_cast<int64_t>(batch.size())}, {"error", r.error().message}});
  }
}

void DenialAudit::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, every_, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    flush();
    lock.lock();
  }
}

}  // namespace tinyfleet::server
