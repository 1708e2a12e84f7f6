#pragma once

// The typed compile outputs on the wire of tinyfleet.v1.Optimizer (the worker writes
// them, fleetd's remote compiler reads them back, checked with check_outputs).
#include "tinyfleet/optimizer_service/compile_outputs.h"
#include "tinyfleet/v1/optimizer.pb.h"

namespace tinyfleet::optimizer_service {

void to_proto(const CompileOutputs& outputs, v1::CompileResponse* out);
Result<CompileOutputs> from_proto(const v1::CompileResponse& response);

}  // namespace tinyfleet::optimizer_service
