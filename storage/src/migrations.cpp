#include "tinyfleet/storage/migrations.h"

#include <algorithm>

namespace tinyfleet::storage {

namespace {
// Any constant works; it only has to be the same for every fleetd replica.
constexpr int64_t kMigrationLockKey = 0x7466'6d69'6772;  // "tfmigr"
}  // namespace

Expected<int> migrate(Database& db, const std::vector<Migration>& migrations) {
  auto ready = db.transact([](pqxx::work& w) {
    w.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLockKey) + ")");
    w.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    return Done{};
  });
  if (!ready) return ready.error();

  std::vector<Migration> ordered = migrations;
  std::sort(ordered.begin(), ordered.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  int applied = 0;
  for (const auto& m : ordered) {
    auto step = db.transact([&](pqxx::work& w) {
      w.exec("SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLockKey) + ")");
      auto done = w.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", m.version);
      if (!done.empty()) return false;
      try {
        w.exec(m.sql);
      } catch (const pqxx::sql_error& e) {
        fail(ErrorCode::kInternal, "migration " + std::to_string(m.version) + " '" + m.name +
                                       "' failed, schema left unchanged: " + e.what());
      }
      w.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version,
                    m.name);
      return true;
    });
    if (!step) return step.error();
    if (*step) ++applied;
  }
  return applied;
}

}  // namespace tinyfleet::storage
