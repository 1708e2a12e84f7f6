#include "tinyfleet/server/admin_service.h"

#include "convert.h"
#include "names.h"
#include "tinyfleet/server/grpc_status.h"
#include "tinyfleet/server/log.h"
#include "tinyfleet/storage/repositories.h"

namespace tinyfleet::server {

grpc::Status AdminService::CreateToken(grpc::ServerContext* ctx, const v1::CreateTokenRequest* req,
                                       v1::CreateTokenResponse* out) {
  Caller caller;
  if (auto s = auth_.authorize(*ctx, storage::Role::kAdmin, "CreateToken", &caller); !s.ok()) {
    return s;
  }
  if (!names::token(req->name())) {
    return invalid_argument("name '" + req->name() + "' is not a token name");
  }
  auto role = convert::role(req->role());
  if (!role) return invalid_argument("role must be ROLE_VIEWER, ROLE_OPERATOR or ROLE_ADMIN");
  if (req->ttl_seconds() > static_cast<uint64_t>(storage::api_tokens::kMaxTtlSeconds)) {
    return invalid_argument("ttl_seconds " + std::to_string(req->ttl_seconds()) +
                            " is longer than ten years (" +
                            std::to_string(storage::api_tokens::kMaxTtlSeconds) + ")");
  }
  const int64_t ttl =
      req->ttl_seconds() == 0 ? kDefaultTokenTtlSeconds : static_cast<int64_t>(req->ttl_seconds());
  const std::string secret = Authenticator::new_secret();
  auto r = db_.transact([&](pqxx::work& w) {
    auto t = storage::api_tokens::create(w, req->name(), *role, secret, ttl);
    storage::audit_log::append(w, {caller.name, "token.create", "token/" + t.name,
                                   std::string("{\"role\":\"") + storage::to_string(*role) +
                                       "\",\"ttl_seconds\":" + std::to_string(ttl) + "}"});
    return t;
  });
  if (!r) return to_status(r.error());
  convert::token(*r, out->mutable_token());
  out->set_secret(secret);
  log::info("token.created",
            {{"token", r->name}, {"role", storage::to_string(*role)}, {"by", caller.name}});
  return grpc::Status::OK;
}

grpc::Status AdminService::ListTokens(grpc::ServerContext* ctx, const v1::ListTokensRequest*,
                                      v1::ListTokensResponse* out) {
  if (auto s = auth_.authorize(*ctx, storage::Role::kAdmin, "ListTokens", nullptr); !s.ok()) {
    return s;
  }
  auto r = db_.transact([](pqxx::work& w) { return storage::api_tokens::list(w); });
  if (!r) return to_status(r.error());
  for (const auto& t : *r) convert::token(t, out->add_tokens());
  return grpc::Status::OK;
}

grpc::Status AdminService::RevokeToken(grpc::ServerContext* ctx, const v1::RevokeTokenRequest* req,
                                       v1::Token* out) {
  Caller caller;
  if (auto s = auth_.authorize(*ctx, storage::Role::kAdmin, "RevokeToken", &caller); !s.ok()) {
    return s;
  }
  auto r = db_.transact([&](pqxx::work& w) {
    storage::api_tokens::revoke(w, req->name());
    storage::audit_log::append(w, {caller.name, "token.revoke", "token/" + req->name(), "{}"});
    for (const auto& t : storage::api_tokens::list(w)) {
      if (t.name == req->name()) return t;
    }
    storage::fail(storage::ErrorCode::kNotFound, "token '" + req->name() + "' does not exist");
  });
  if (!r) return to_status(r.error());
  convert::token(*r, out);
  return grpc::Status::OK;
}

}  // namespace tinyfleet::server
