#include "tinyfleet/optimizer_service/optimizer_grpc_service.h"

#include <nlohmann/json.hpp>

#include "tinyfleet/optimizer_service/class_compiler.h"
#include "tinyfleet/optimizer_service/compile_outputs_proto.h"

namespace tinyfleet::optimizer_service {

grpc::Status OptimizerGrpcService::Compile(grpc::ServerContext*, const v1::CompileRequest* req,
                                           v1::CompileResponse* out) {
  if (req->onnx().empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "onnx is empty"};
  const auto cls = nlohmann::json::parse(req->device_class_json(), nullptr, false);
  if (cls.is_discarded() || !cls.is_object()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "device_class_json is not a JSON object"};
  }
  if (req->device_class().empty()) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "device_class (the class name) is empty"};
  }
  const std::string& name = req->device_class();
  auto r = compile_for_class(req->onnx(), req->calibration_npz(), req->validation_npz(), name,
                             req->device_class_json(), req->model_format());
  out->set_refused(r.refused);
  out->set_refusal_reason(r.refusal_reason);
  out->set_artifact(std::move(r.artifact));
  out->set_report_json(r.report_json);
  if (!r.refused) to_proto(r.outputs, out);
  return grpc::Status::OK;
}

}  // namespace tinyfleet::optimizer_service
