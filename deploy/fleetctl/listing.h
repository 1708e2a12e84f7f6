#pragma once

// Whole listings, page after page (fleetd caps each page).
#include <vector>

#include "cli.h"
#include "tinyfleet/v1/device_registry.grpc.pb.h"
#include "tinyfleet/v1/model_registry.grpc.pb.h"

namespace tinyfleet::fleetctl {

// Every model, by name.
grpc::Status list_all_models(const Connection& c, std::vector<v1::Model>* out);
// Every device that matches `filter` (its page fields are set here).
grpc::Status list_all_devices(const Connection& c, v1::ListDevicesRequest filter,
                              std::vector<v1::Device>* out);

}  // namespace tinyfleet::fleetctl
