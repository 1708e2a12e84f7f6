#include "tinyfleet/testing/scratch_database.h"

#include <atomic>
#include <chrono>
#include <stdexcept>

#include <unistd.h>

#include <pqxx/pqxx>

#include "tinyfleet/storage/migrations.h"
#include "tinyfleet/testing/environment.h"

namespace tinyfleet::testing {

namespace {
std::string with_database(const std::string& uri, const std::string& db) {
  auto slash = uri.rfind('/');
  return uri.substr(0, slash + 1) + db;
}

void admin_exec(const std::string& admin_uri, const std::string& sql) {
  pqxx::connection c(admin_uri);
  pqxx::nontransaction n(c);
  n.exec(sql);
}
}  // namespace

ScratchDatabase::ScratchDatabase(int pool_size, bool migrate) {
  admin_uri_ = require_env("TINYFLEET_PG_URI");
  static std::atomic<int> counter{0};
  name_ = "t_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
          std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 100000);
  admin_exec(admin_uri_, "CREATE DATABASE " + name_);
  uri_ = with_database(admin_uri_, name_);
  auto opened = storage::Database::open({uri_, pool_size});
  if (!opened) throw std::runtime_error(opened.error().message);
  db_ = std::move(opened.value());
  if (migrate) {
    auto m = storage::migrate(*db_);
    if (!m) throw std::runtime_error("migrations failed: " + m.error().message);
  }
}

ScratchDatabase::~ScratchDatabase() {
  db_.reset();
  try {
    admin_exec(admin_uri_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception&) {
    // The stack's cluster is removed after the run anyway.
  }
}

}  // namespace tinyfleet::testing
