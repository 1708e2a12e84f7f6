#pragma once

#include <optional>
#include <vector>

#include <pqxx/pqxx>

#include "tinyfleet/storage/records.h"

namespace tinyfleet::storage::api_tokens {

// Stores only the sha256 of `secret` (tokens are 256-bit random, so a fast hash
// is enough); kAlreadyExists for a taken name.
ApiTokenRecord create(pqxx::work& w, const std::string& name, Role role, const std::string& secret);
// The live (not revoked) token whose secret this is.
std::optional<ApiTokenRecord> authenticate(pqxx::work& w, const std::string& secret);
void revoke(pqxx::work& w, const std::string& name);
std::vector<ApiTokenRecord> list(pqxx::work& w);

}  // namespace tinyfleet::storage::api_tokens
