#pragma once

#include <memory>
#include <string>

#include "tinyfleet/storage/database.h"

namespace tinyfleet::testing {

// A fresh, migrated database of its own on the private PostgreSQL of the local
// stack, dropped again when the object goes. Tests never share rows.
class ScratchDatabase {
 public:
  explicit ScratchDatabase(int pool_size = 4, bool migrate = true);
  ~ScratchDatabase();

  storage::Database& db() { return *db_; }
  const std::string& uri() const { return uri_; }
  const std::string& name() const { return name_; }

 private:
  std::string admin_uri_;
  std::string name_;
  std::string uri_;
  std::unique_ptr<storage::Database> db_;
};

}  // namespace tinyfleet::testing
