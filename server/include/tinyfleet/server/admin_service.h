#pragma once

#include <cstdint>

#include "tinyfleet/server/authenticator.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/v1/admin.grpc.pb.h"

namespace tinyfleet::server {

// A token's lifetime when CreateToken names none: 90 days.
constexpr int64_t kDefaultTokenTtlSeconds = 90LL * 24 * 3600;

// tinyfleet.v1.Admin: API tokens; every call needs the admin role.
class AdminService final : public v1::Admin::Service {
 public:
  AdminService(storage::Database& db, const Authenticator& auth) : db_(db), auth_(auth) {}

  grpc::Status CreateToken(grpc::ServerContext* ctx, const v1::CreateTokenRequest* req,
                           v1::CreateTokenResponse* out) override;
  grpc::Status ListTokens(grpc::ServerContext* ctx, const v1::ListTokensRequest* req,
                          v1::ListTokensResponse* out) override;
  grpc::Status RevokeToken(grpc::ServerContext* ctx, const v1::RevokeTokenRequest* req,
                           v1::Token* out) override;

 private:
  storage::Database& db_;
  const Authenticator& auth_;
};

}  // namespace tinyfleet::server
