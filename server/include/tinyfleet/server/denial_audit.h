#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>

#include "tinyfleet/storage/database.h"

namespace tinyfleet::server {

// Refused API calls (failed authentication, permission denials) written to the audit
// log, bounded so a flood of bad tokens can neither fill the table nor take the
// database's connections:
// - a denial only counts in memory, keyed by (actor, action, method); the actor is the
//   token's name once known, else "anonymous", so bad secrets all share one key per
//   method;
// - at most kMaxKeys keys are held; denials past that count in one overflow key per
//   action (actor and object "*");
// - one background thread writes the counts every `every` as one row per key
//   (details: count, the last peer and reason, the window's start) in one transaction,
//   so denials take at most one connection and add at most kMaxKeys + 2 rows per window.
// A window's counts are dropped (and logged) if the database refuses them.
class DenialAudit {
 public:
  static constexpr std::chrono::milliseconds kDefaultEvery{5000};
  static constexpr size_t kMaxKeys = 256;

  explicit DenialAudit(storage::Database& db, std::chrono::milliseconds every = kDefaultEvery);
  ~DenialAudit();  // writes what is still counted
  DenialAudit(const DenialAudit&) = delete;
  DenialAudit& operator=(const DenialAudit&) = delete;

  // action: "auth.unauthenticated" or "auth.permission_denied".
  void record(const std::string& actor, const std::string& action, const std::string& method,
              const std::string& peer, const std::string& reason);
  // Writes the counts now (the background thread calls it every window).
  void flush();

 private:
  struct Count {
    int64_t count = 0;
    std::string peer, reason, since;
  };
  using Key = std::tuple<std::string, std::string, std::string>;  // actor, action, method
  void loop();

  storage::Database& db_;
  const std::chrono::milliseconds every_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<Key, Count> counts_;
  std::mutex flush_mu_;  // one flush at a time
  std::thread thread_;
};

}  // namespace tinyfleet::server
