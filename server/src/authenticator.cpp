#include "tinyfleet/server/authenticator.h"

#include <sodium.h>

#include "rate_limiter.h"
#include "tinyfleet/server/log.h"
#include "tinyfleet/storage/api_tokens.h"

namespace tinyfleet::server {

Authenticator::Authenticator(storage::Database& db)
    : db_(db), audit_(std::make_unique<DenialAudit>(db)) {}
Authenticator::~Authenticator() = default;

namespace {
// The rate limiter's key for a secret: a hash, so the table holds no secrets.
std::string rate_key(const std::string& secret) {
  unsigned char h[16];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(secret.data()),
                     secret.size(), nullptr, 0);
  return std::string(reinterpret_cast<const char*>(h), sizeof h);
}
int rank(storage::Role r) {
  switch (r) {
    case storage::Role::kViewer:
      return 0;
    case storage::Role::kOperator:
      return 1;
    case storage::Role::kAdmin:
      return 2;
  }
  return -1;
}
// A refused call, logged with who asked (the peer, and the token's name once known),
// and counted for the audit log (DenialAudit bounds what that writes).
grpc::Status denied(DenialAudit& audit, const std::string& peer, grpc::StatusCode code,
                    const char* method, const std::string& token, std::string message) {
  audit.record(token.empty() ? "anonymous" : token,
               code == grpc::StatusCode::PERMISSION_DENIED ? "auth.permission_denied"
                                                           : "auth.unauthenticated",
               method, peer, message);
  log::warn("auth.denied",
            {{"method", method},
             {"peer", peer},
             {"token", token},
             {"code", code == grpc::StatusCode::PERMISSION_DENIED ? "PERMISSION_DENIED"
                                                                  : "UNAUTHENTICATED"},
             {"reason", message}});
  return {code, std::move(message)};
}
}  // namespace

grpc::Status Authenticator::authorize(const grpc::ServerContext& context, storage::Role needed,
                                      const char* method, Caller* caller) const {
  const auto& md = context.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return authorize(nullptr, context.peer(), needed, method, caller);
  const std::string value(it->second.data(), it->second.size());
  return authorize(&value, context.peer(), needed, method, caller);
}

grpc::Status Authenticator::authorize(const std::string* authorization, const std::string& peer,
                                      storage::Role needed, const char* method,
                                      Caller* caller) const {
  if (!authorization) {
    return denied(*audit_, peer, grpc::StatusCode::UNAUTHENTICATED, method, "",
                  std::string(method) + " needs a token: send 'authorization: Bearer <token>'");
  }
  const std::string& value = *authorization;
  const std::string prefix = "Bearer ";
  if (value.rfind(prefix, 0) != 0 || value.size() == prefix.size()) {
    return denied(*audit_, peer, grpc::StatusCode::UNAUTHENTICATED, method, "",
                  "the authorization header must be 'Bearer <token>'");
  }
  const std::string secret = value.substr(prefix.size());
  // Before any database work; not logged per call (a flood would flood the log).
  if (limiter_ && !limiter_->allow(rate_key(secret))) {
    return {
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        std::string(method) + ": too many calls with this token; slow down (api.rate_per_second)"};
  }
  auto token =
      db_.transact([&](pqxx::work& w) { return storage::api_tokens::authenticate(w, secret); });
  if (!token) return {grpc::StatusCode::UNAVAILABLE, token.error().message};
  if (!*token) {
    return denied(*audit_, peer, grpc::StatusCode::UNAUTHENTICATED, method, "",
                  "the token is unknown or revoked");
  }
  const auto& record = **token;
  if (record.expired) {
    return denied(*audit_, peer, grpc::StatusCode::UNAUTHENTICATED, method, record.name,
                  "token '" + record.name + "' expired at " + record.expires_at.value_or("?") +
                      "; ask an admin for a new one");
  }
  if (rank(record.role) < rank(needed)) {
    return denied(*audit_, peer, grpc::StatusCode::PERMISSION_DENIED, method, record.name,
                  std::string(method) + " needs role " + storage::to_string(needed) + "; token '" +
                      record.name + "' has role " + storage::to_string(record.role));
  }
  if (caller) *caller = Caller{record.name, record.role};
  return grpc::Status::OK;
}

storage::Expected<bool> Authenticator::ensure_bootstrap_admin(const std::string& secret) const {
  return db_.transact([&](pqxx::work& w) {
    for (const auto& t : storage::api_tokens::list(w)) {
      if (t.name == "bootstrap-admin") return false;
    }
    storage::api_tokens::create(w, "bootstrap-admin", storage::Role::kAdmin, secret);
    return true;
  });
}

std::string Authenticator::new_secret() {
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return std::string("tf_") + b64;
}

}  // namespace tinyfleet::server
