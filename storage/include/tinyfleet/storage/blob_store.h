#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <pqxx/pqxx>

#include "tinyfleet/storage/database.h"

namespace tinyfleet::storage {

// Lower-case hex sha256 of `bytes` (libsodium).
std::string sha256_hex(std::string_view bytes);

// Content-addressed storage keyed by sha256: a blob stored twice is stored once.
// PostgreSQL holds the bytes for now; an object store can implement this later.
class BlobStore {
 public:
  virtual ~BlobStore() = default;
  virtual Expected<std::string> put(std::string_view bytes) = 0;  // returns the sha256
  virtual Expected<std::string> get(const std::string& sha256) = 0;
  virtual Expected<bool> contains(const std::string& sha256) = 0;
};

class PgBlobStore : public BlobStore {
 public:
  explicit PgBlobStore(Database& db) : db_(db) {}
  Expected<std::string> put(std::string_view bytes) override;
  Expected<std::string> get(const std::string& sha256) override;
  Expected<bool> contains(const std::string& sha256) override;

  // The same, inside a caller's transaction (so a blob and the row that names it
  // commit together).
  static std::string put(pqxx::work& w, std::string_view bytes);
  static std::optional<std::string> get(pqxx::work& w, const std::string& sha256);

 private:
  Database& db_;
};

}  // namespace tinyfleet::storage
