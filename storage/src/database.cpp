#include "tinyfleet/storage/database.h"

#include <thread>

namespace tinyfleet::storage {

// Connections are made up front and handed out one per transaction.
class Database::Pool {
 public:
  explicit Pool(const DatabaseOptions& options)
      : uri_(options.uri), timeout_(options.acquire_timeout) {
    stats_.size = options.pool_size;
    for (int i = 0; i < options.pool_size; ++i) {
      idle_.push_back(std::make_unique<pqxx::connection>(uri_));
    }
  }

  std::unique_ptr<pqxx::connection> connect() const {
    return std::make_unique<pqxx::connection>(uri_);
  }

  // False when no connection came free within the timeout (`c` untouched).
  bool acquire(std::unique_ptr<pqxx::connection>& c) {
    std::unique_lock<std::mutex> lock(mu_);
    ++stats_.acquisitions;
    if (idle_.empty()) {
      ++stats_.waits;
      const auto start = std::chrono::steady_clock::now();
      const auto ready = [&] { return !idle_.empty(); };
      bool got = true;
      if (timeout_.count() > 0) {
        got = cv_.wait_for(lock, timeout_, ready);
      } else {
        cv_.wait(lock, ready);
      }
      stats_.wait_seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!got) {
        ++stats_.timeouts;
        return false;
      }
    }
    c = std::move(idle_.back());
    idle_.pop_back();
    ++stats_.in_use;
    return true;
  }

  std::chrono::milliseconds timeout() const { return timeout_; }

  PoolStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  // A broken connection comes back as null and is remade by the next user.
  void release(std::unique_ptr<pqxx::connection> c) {
    if (c && !c->is_open()) c.reset();
    {
      std::lock_guard<std::mutex> lock(mu_);
      idle_.push_back(std::move(c));
      --stats_.in_use;
    }
    cv_.notify_one();
  }

 private:
  std::string uri_;
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  PoolStats stats_;
};

PoolStats Database::pool_stats() const { return pool_->stats(); }

Database::Database(DatabaseOptions options) : options_(std::move(options)) {}
Database::~Database() = default;

Expected<std::unique_ptr<Database>> Database::open(const DatabaseOptions& options) {
  if (options.uri.empty()) {
    return Error{ErrorCode::kInvalidArgument, "database uri is empty"};
  }
  if (options.pool_size < 1) {
    return Error{ErrorCode::kInvalidArgument, "database pool_size must be at least 1"};
  }
  if (options.acquire_timeout.count() < 0) {
    return Error{ErrorCode::kInvalidArgument, "database acquire_timeout must not be negative"};
  }
  std::unique_ptr<Database> db(new Database(options));
  try {
    db->pool_ = std::make_unique<Pool>(options);
  } catch (const std::exception& e) {
    return Error{ErrorCode::kUnavailable, std::string("cannot connect to PostgreSQL: ") + e.what()};
  }
  return db;
}

namespace {

Error classify(const pqxx::sql_error& e) {
  const std::string what = e.what();
  if (dynamic_cast<const pqxx::unique_violation*>(&e)) {
    return {ErrorCode::kAlreadyExists, "already exists: " + what};
  }
  if (dynamic_cast<const pqxx::foreign_key_violation*>(&e)) {
    return {ErrorCode::kNotFound, "refers to a missing object: " + what};
  }
  if (dynamic_cast<const pqxx::check_violation*>(&e) ||
      dynamic_cast<const pqxx::not_null_violation*>(&e) ||
      dynamic_cast<const pqxx::data_exception*>(&e)) {
    return {ErrorCode::kInvalidArgument, "invalid value: " + what};
  }
  return {ErrorCode::kInternal, what};
}

bool retryable(const pqxx::sql_error& e) {
  // 40001 serialization_failure, 40P01 deadlock_detected
  return e.sqlstate() == "40001" || e.sqlstate() == "40P01";
}

// A server shutting down or restarting (57P01 admin_shutdown, 57P02 crash_shutdown,
// 57P03 cannot_connect_now) or a connection exception (class 08): the database is away,
// not refusing the transaction.
bool server_going_away(const pqxx::sql_error& e) {
  const std::string& s = e.sqlstate();
  return s.rfind("57P", 0) == 0 || s.rfind("08", 0) == 0;
}

}  // namespace

std::optional<Error> Database::run(const std::function<void(pqxx::work&)>& body) {
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<pqxx::connection> conn;
    if (!pool_->acquire(conn)) {
      return Error{ErrorCode::kUnavailable, "no database connection free within " +
                                                std::to_string(pool_->timeout().count()) +
                                                " ms (all " + std::to_string(options_.pool_size) +
                                                " busy)"};
    }
    std::optional<Error> error;
    bool retry = false;
    try {
      if (!conn) conn = pool_->connect();
      pqxx::work w(*conn);
      body(w);
      w.commit();
    } catch (const StorageException& e) {
      error = e.error();
    } catch (const pqxx::broken_connection& e) {
      conn.reset();  // the pool replaces it
      error = Error{ErrorCode::kUnavailable, std::string("database connection lost: ") + e.what()};
      retry = true;
    } catch (const pqxx::transaction_rollback& e) {
      // Serialization failure or deadlock: the server rolled back; run it again.
      error =
          Error{ErrorCode::kUnavailable, std::string("transaction kept conflicting: ") + e.what()};
      retry = true;
    } catch (const pqxx::sql_error& e) {
      error = classify(e);
      retry = retryable(e);
      if (server_going_away(e)) {
        conn.reset();  // the pool replaces it
        error = Error{ErrorCode::kUnavailable, std::string("database going away: ") + e.what()};
        retry = true;
      }
    } catch (const pqxx::in_doubt_error& e) {
      error = Error{ErrorCode::kUnavailable, std::string("commit outcome unknown: ") + e.what()};
    } catch (const std::exception& e) {
      error = Error{ErrorCode::kInternal, e.what()};
    }
    pool_->release(std::move(conn));
    if (!error || !retry || attempt >= options_.max_retries) return error;
    std::this_thread::sleep_for(std::chrono::milliseconds(5 << attempt));
  }
}

}  // namespace tinyfleet::storage
