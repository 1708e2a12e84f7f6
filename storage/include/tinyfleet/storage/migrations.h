#pragma once

#include <string>
#include <vector>

#include "tinyfleet/storage/database.h"

namespace tinyfleet::storage {

struct Migration {
  int version = 0;   // from the file name: 0001_initial.sql -> 1
  std::string name;  // "initial"
  std::string sql;
};

// The numbered SQL files under storage/migrations/, embedded at build time.
const std::vector<Migration>& builtin_migrations();

// Applies every migration not yet recorded in schema_migrations, each in its own
// transaction together with its record, in version order. Re-running is a no-op;
// a failing migration leaves the schema as it was before it. Concurrent callers
// are serialized by an advisory lock. Returns how many were applied.
Expected<int> migrate(Database& db,
                      const std::vector<Migration>& migrations = builtin_migrations());

}  // namespace tinyfleet::storage
