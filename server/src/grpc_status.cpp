#include "tinyfleet/server/grpc_status.h"

namespace tinyfleet::server {

grpc::Status to_status(const storage::Error& error) {
  using storage::ErrorCode;
  switch (error.code) {
    case ErrorCode::kNotFound:
      return {grpc::StatusCode::NOT_FOUND, error.message};
    case ErrorCode::kAlreadyExists:
      return {grpc::StatusCode::ALREADY_EXISTS, error.message};
    case ErrorCode::kInvalidArgument:
      return {grpc::StatusCode::INVALID_ARGUMENT, error.message};
    case ErrorCode::kFailedPrecondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, error.message};
    case ErrorCode::kUnavailable:
      return {grpc::StatusCode::UNAVAILABLE, error.message};
    case ErrorCode::kInternal:
      break;
  }
  return {grpc::StatusCode::INTERNAL, error.message};
}

grpc::Status invalid_argument(const std::string& message) {
  return {grpc::StatusCode::INVALID_ARGUMENT, message};
}
grpc::Status not_found(const std::string& message) {
  return {grpc::StatusCode::NOT_FOUND, message};
}
grpc::Status failed_precondition(const std::string& message) {
  return {grpc::StatusCode::FAILED_PRECONDITION, message};
}

}  // namespace tinyfleet::server
