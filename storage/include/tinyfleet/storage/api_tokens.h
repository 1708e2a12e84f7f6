#pragma once

#include <optional>
#include <vector>

#include <pqxx/pqxx>

#include "tinyfleet/storage/records.h"

namespace tinyfleet::storage::api_tokens {

// The longest lifetime a token may be given (ten years).
constexpr int64_t kMaxTtlSeconds = 10LL * 366 * 24 * 3600;

// Stores only the sha256 of `secret` (tokens are 256-bit random, so a fast hash
// is enough); kAlreadyExists for a taken name. The token expires `ttl_seconds` after
// now (1..kMaxTtlSeconds, else kInvalidArgument); without one it never expires (only
// the bootstrap admin token from fleetd's settings is made so).
ApiTokenRecord create(pqxx::work& w, const std::string& name, Role role, const std::string& secret,
                      std::optional<int64_t> ttl_seconds = std::nullopt);
// The not revoked token whose secret this is, expired or not (see ApiTokenRecord::expired).
std::optional<ApiTokenRecord> authenticate(pqxx::work& w, const std::string& secret);
void revoke(pqxx::work& w, const std::string& name);
std::vector<ApiTokenRecord> list(pqxx::work& w);

}  // namespace tinyfleet::storage::api_tokens
