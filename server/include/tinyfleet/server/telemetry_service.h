#pragma once

#include "tinyfleet/server/authenticator.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/v1/telemetry.grpc.pb.h"

namespace tinyfleet::server {

// tinyfleet.v1.Telemetry: telemetry windows of a device or of a rollout's devices, and
// per-bucket aggregates over them (docs/rollouts.md).
class TelemetryService final : public v1::Telemetry::Service {
 public:
  TelemetryService(storage::Database& db, const Authenticator& auth) : db_(db), auth_(auth) {}
  grpc::Status Query(grpc::ServerContext* ctx, const v1::TelemetryQuery* req,
                     v1::TelemetryQueryResponse* out) override;

 private:
  storage::Database& db_;
  const Authenticator& auth_;
};

}  // namespace tinyfleet::server
