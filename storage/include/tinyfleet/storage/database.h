#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <pqxx/pqxx>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::storage {

struct DatabaseOptions {
  std::string uri;      // postgresql://user@host:port/db
  int pool_size = 4;    // connections kept open
  int max_retries = 5;  // for serialization failures and deadlocks
  // How long a transaction waits for a free connection before it fails kUnavailable
  // ("no database connection free ..."); 0 waits without end. fleetd sets it from
  // database.acquire_timeout_ms.
  std::chrono::milliseconds acquire_timeout{0};
};

// What the connection pool has done since it opened (for metrics).
struct PoolStats {
  int size = 0;
  int in_use = 0;
  uint64_t acquisitions = 0;  // transactions started
  uint64_t waits = 0;         // of those, how many found no idle connection
  double wait_seconds = 0;    // their total wait
  uint64_t timeouts = 0;      // of the waits, how many gave up (acquire_timeout)
};

// A fixed pool of PostgreSQL connections with every prepared statement of the
// repositories registered on each. All access goes through transact(): one
// transaction per call, retried on serialization failure, errors as values.
class Database {
 public:
  static Expected<std::unique_ptr<Database>> open(const DatabaseOptions& options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs `body` inside one transaction and commits it. Anything the body throws
  // rolls the transaction back; nothing partial is kept.
  template <class Body>
  auto transact(Body&& body) -> Expected<std::invoke_result_t<Body, pqxx::work&>> {
    using R = std::invoke_result_t<Body, pqxx::work&>;
    std::optional<R> result;
    auto error = run([&](pqxx::work& w) { result.emplace(body(w)); });
    if (error) return *error;
    return std::move(*result);
  }

  // For statements that need no transaction of their own (e.g. COPY with its own).
  const DatabaseOptions& options() const { return options_; }
  PoolStats pool_stats() const;

 private:
  class Pool;
  explicit Database(DatabaseOptions options);
  std::optional<Error> run(const std::function<void(pqxx::work&)>& body);

  DatabaseOptions options_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace tinyfleet::storage
