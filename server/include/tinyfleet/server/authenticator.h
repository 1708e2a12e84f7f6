#pragma once

#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "tinyfleet/server/denial_audit.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/storage/records.h"

namespace tinyfleet::server {

class RateLimiter;

// Who is calling: the token's name and role.
struct Caller {
  std::string name;
  storage::Role role = storage::Role::kViewer;
};

// Bearer tokens ("authorization: Bearer <secret>"), looked up by their sha256 in
// api_tokens. Roles are ordered: viewer < operator < admin. A token past its expiry is
// refused (UNAUTHENTICATED, "expired"). Every refusal goes to the audit log through a
// DenialAudit (aggregated, so a flood of bad tokens writes a bounded number of rows).
class Authenticator {
 public:
  explicit Authenticator(storage::Database& db);
  ~Authenticator();

  // UNAUTHENTICATED without a valid token, PERMISSION_DENIED when its role is below
  // `needed`; on success fills `caller`.
  grpc::Status authorize(const grpc::ServerContext& context, storage::Role needed,
                         const char* method, Caller* caller) const;
  // The same check on an authorization header's value (nullptr: no header), for callers
  // outside gRPC (the web console); `peer` names who asked in the denial's log line.
  grpc::Status authorize(const std::string* authorization, const std::string& peer,
                         storage::Role needed, const char* method, Caller* caller) const;

  // Creates the token "bootstrap-admin" with this secret unless it exists already.
  storage::Expected<bool> ensure_bootstrap_admin(const std::string& secret) const;

  // A fresh random secret ("tf_" + 43 url-safe base64 characters, 256 bits).
  static std::string new_secret();

  // Calls per bearer token are limited by `limiter` (not owned; null: unlimited): beyond
  // its rate a call gets RESOURCE_EXHAUSTED before any database work.
  void set_rate_limiter(RateLimiter* limiter) { limiter_ = limiter; }

 private:
  storage::Database& db_;
  std::unique_ptr<DenialAudit> audit_;
  RateLimiter* limiter_ = nullptr;
};

}  // namespace tinyfleet::server
