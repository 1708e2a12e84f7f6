#pragma once

#include <functional>

#include "tinyfleet/server/authenticator.h"
#include "tinyfleet/server/gate_policy.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/v1/rollouts.grpc.pb.h"

namespace tinyfleet::server {

// tinyfleet.v1.Rollouts: creating a rollout checks everything the engine will need
// (the version, its artifacts for every selected class, the gates, the phases) and
// lists its devices with their phases; the engine (any leader replica) drives it.
class RolloutsService final : public v1::Rollouts::Service {
 public:
  // `updates_off` names what is missing when fleetd cannot send updates (empty: it can).
  // `gates`: how Promote decides the gates (as the engine does).
  RolloutsService(storage::Database& db, const Authenticator& auth, std::function<void()> wake,
                  std::string updates_off, GatePolicy gates = {})
      : db_(db),
        auth_(auth),
        wake_(std::move(wake)),
        updates_off_(std::move(updates_off)),
        gates_(gates) {}

  grpc::Status CreateRollout(grpc::ServerContext* ctx, const v1::CreateRolloutRequest* req,
                             v1::Rollout* out) override;
  grpc::Status GetRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                          v1::Rollout* out) override;
  grpc::Status ListRollouts(grpc::ServerContext* ctx, const v1::ListRolloutsRequest* req,
                            v1::ListRolloutsResponse* out) override;
  grpc::Status PauseRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                            v1::Rollout* out) override;
  grpc::Status ResumeRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                             v1::Rollout* out) override;
  grpc::Status PromoteRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                              v1::Rollout* out) override;
  grpc::Status SkipGates(grpc::ServerContext* ctx, const v1::SkipGatesRequest* req,
                         v1::Rollout* out) override;
  grpc::Status AbortRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                            v1::Rollout* out) override;
  grpc::Status WatchRollout(grpc::ServerContext* ctx, const v1::RolloutRef* req,
                            grpc::ServerWriter<v1::Rollout>* writer) override;

 private:
  grpc::Status change(grpc::ServerContext* ctx, const std::string& name, const char* method,
                      const char* action, v1::Rollout* out,
                      const std::string* skip_reason = nullptr);

  storage::Database& db_;
  const Authenticator& auth_;
  std::function<void()> wake_;
  std::string updates_off_;
  GatePolicy gates_;
};

}  // namespace tinyfleet::server
