#pragma once

// tinyfleet.v1.Optimizer: the compiler as a service, so compile workers can run apart
// from fleetd (`tinyfleet-optimizer --listen host:port`).
#include "tinyfleet/v1/optimizer.grpc.pb.h"

namespace tinyfleet::optimizer_service {

class OptimizerGrpcService final : public v1::Optimizer::Service {
 public:
  grpc::Status Compile(grpc::ServerContext* ctx, const v1::CompileRequest* req,
                       v1::CompileResponse* out) override;
};

}  // namespace tinyfleet::optimizer_service
