#include "tinyfleet/storage/api_tokens.h"

#include "sql.h"
#include "tinyfleet/storage/blob_store.h"

namespace tinyfleet::storage::api_tokens {

namespace {
#define TF_TOKEN_COLUMNS \
  "id, name, role, " TF_TS("created_at") ", revoked_at IS NOT NULL, "                  \
                                         "CASE WHEN expires_at IS NULL THEN NULL ELSE " \
      TF_TS("expires_at") " END, expires_at IS NOT NULL AND expires_at <= now()"
const sql::Statement kCreate{
    "api_tokens.create",
    "INSERT INTO api_tokens (name, token_hash, role, expires_at) VALUES ($1, $2, $3, "
    "CASE WHEN $4::bigint IS NULL THEN NULL "
    "ELSE now() + make_interval(secs => $4::bigint) END) "
    "ON CONFLICT DO NOTHING RETURNING " TF_TOKEN_COLUMNS};
const sql::Statement kAuthenticate{"api_tokens.authenticate",
                                   "SELECT " TF_TOKEN_COLUMNS
                                   " FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"};
const sql::Statement kRevoke{"api_tokens.revoke",
                             "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND "
                             "revoked_at IS NULL"};
const sql::Statement kList{"api_tokens.list",
                           "SELECT " TF_TOKEN_COLUMNS " FROM api_tokens ORDER BY name"};

ApiTokenRecord from_row(const pqxx::row& r) {
  ApiTokenRecord t;
  t.id = r[0].as<int64_t>();
  t.name = r[1].as<std::string>();
  t.role = role_from_string(r[2].as<std::string>()).value_or(Role::kViewer);
  t.created_at = r[3].as<std::string>();
  t.revoked = r[4].as<bool>();
  t.expires_at = sql::opt_string(r[5]);
  t.expired = r[6].as<bool>();
  return t;
}
}  // namespace

ApiTokenRecord create(pqxx::work& w, const std::string& name, Role role, const std::string& secret,
                      std::optional<int64_t> ttl_seconds) {
  if (ttl_seconds && (*ttl_seconds < 1 || *ttl_seconds > kMaxTtlSeconds)) {
    fail(ErrorCode::kInvalidArgument, "token lifetime must be 1.." +
                                          std::to_string(kMaxTtlSeconds) + " seconds, got " +
                                          std::to_string(*ttl_seconds));
  }
  if (name.empty()) fail(ErrorCode::kInvalidArgument, "token name is empty");
  if (secret.size() < 16)
    fail(ErrorCode::kInvalidArgument, "token secret is shorter than 16 bytes");
  auto r =
      sql::run(w, kCreate, name, sha256_hex(secret), to_string(role),
               sql::nullable(ttl_seconds ? std::optional<std::string>(std::to_string(*ttl_seconds))
                                         : std::nullopt));
  if (r.empty()) fail(ErrorCode::kAlreadyExists, "token '" + name + "' already exists");
  return from_row(r[0]);
}

std::optional<ApiTokenRecord> authenticate(pqxx::work& w, const std::string& secret) {
  auto r = sql::run(w, kAuthenticate, sha256_hex(secret));
  if (r.empty()) return std::nullopt;
  return from_row(r[0]);
}

void revoke(pqxx::work& w, const std::string& name) {
  if (sql::run(w, kRevoke, name).affected_rows() == 0) {
    fail(ErrorCode::kNotFound, "no live token named '" + name + "'");
  }
}

std::vector<ApiTokenRecord> list(pqxx::work& w) {
  std::vector<ApiTokenRecord> out;
  for (const auto& r : sql::run(w, kList)) out.push_back(from_row(r));
  return out;
}

}  // namespace tinyfleet::storage::api_tokens
