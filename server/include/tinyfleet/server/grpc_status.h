#pragma once

#include <grpcpp/grpcpp.h>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::server {

// storage's error codes onto gRPC's, one to one; the message passes through
// unchanged because it already names the object.
grpc::Status to_status(const storage::Error& error);

grpc::Status invalid_argument(const std::string& message);
grpc::Status not_found(const std::string& message);
grpc::Status failed_precondition(const std::string& message);

}  // namespace tinyfleet::server
