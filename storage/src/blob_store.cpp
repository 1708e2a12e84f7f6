#include "tinyfleet/storage/blob_store.h"

#include <sodium.h>

#include "sql.h"

namespace tinyfleet::storage {

namespace {
const sql::Statement kPut{"blobs.put",
                          "INSERT INTO blobs (sha256, size_bytes, data) VALUES ($1, $2, $3) "
                          "ON CONFLICT (sha256) DO NOTHING"};
const sql::Statement kGet{"blobs.get", "SELECT data FROM blobs WHERE sha256 = $1"};
const sql::Statement kContains{"blobs.contains", "SELECT 1 FROM blobs WHERE sha256 = $1"};
}  // namespace

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  static const char* kHex = "0123456789abcdef";
  std::string out(2 * sizeof digest, '0');
  for (size_t i = 0; i < sizeof digest; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 15];
  }
  return out;
}

std::string PgBlobStore::put(pqxx::work& w, std::string_view bytes) {
  std::string sha = sha256_hex(bytes);
  sql::run(w, kPut, sha, static_cast<int64_t>(bytes.size()),
           pqxx::binarystring(bytes.data(), bytes.size()));
  return sha;
}

std::optional<std::string> PgBlobStore::get(pqxx::work& w, const std::string& sha256) {
  auto r = sql::run(w, kGet, sha256);
  if (r.empty()) return std::nullopt;
  return pqxx::binarystring(r[0][0]).str();
}

Expected<std::string> PgBlobStore::put(std::string_view bytes) {
  return db_.transact([&](pqxx::work& w) { return put(w, bytes); });
}

Expected<std::string> PgBlobStore::get(const std::string& sha256) {
  return db_.transact([&](pqxx::work& w) {
    auto data = get(w, sha256);
    if (!data) fail(ErrorCode::kNotFound, "blob " + sha256 + " is not stored");
    return std::move(*data);
  });
}

Expected<bool> PgBlobStore::contains(const std::string& sha256) {
  return db_.transact([&](pqxx::work& w) { return !sql::run(w, kContains, sha256).empty(); });
}

}  // namespace tinyfleet::storage
