#include <chrono>

#include "artifact_outputs.h"
#include "tinyfleet/optimizer_service/compile_outputs_proto.h"
#include "tinyfleet/server/model_compiler.h"
#include "tinyfleet/v1/optimizer.grpc.pb.h"

namespace tinyfleet::server {

namespace {

class RemoteCompiler : public ModelCompiler {
 public:
  explicit RemoteCompiler(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::Optimizer::NewStub(std::move(channel))) {}

  storage::Expected<CompileOutcome> compile(const CompileInput& input) override {
    v1::CompileRequest request;
    request.set_onnx(input.onnx);
    request.set_model_format(input.model_format);
    request.set_calibration_npz(input.calibration_npz);
    request.set_validation_npz(input.validation_npz);
    request.set_device_class_json(input.device_class_json);
    request.set_device_class(input.device_class);
    v1::CompileResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
    auto status = stub_->Compile(&context, request, &response);
    if (!status.ok()) {
      return storage::Error{storage::ErrorCode::kUnavailable,
                            "optimizer service failed for class " + input.device_class + ": " +
                                status.error_message()};
    }
    CompileOutcome out;
    out.refused = response.refused();
    out.refusal_reason = response.refusal_reason();
    out.artifact = response.artifact();
    out.report_json = response.report_json().empty() ? "{}" : response.report_json();
    if (!out.refused) {
      auto outputs = optimizer_service::from_proto(response);
      if (!outputs) {
        return storage::Error{
            storage::ErrorCode::kInternal,
            "optimizer service for class " + input.device_class + ": " + outputs.error().message};
      }
      out.outputs = to_record(*outputs);
    }
    return out;
  }

 private:
  std::unique_ptr<v1::Optimizer::Stub> stub_;
};

}  // namespace

std::unique_ptr<ModelCompiler> make_remote_compiler(std::shared_ptr<grpc::Channel> channel) {
  return std::make_unique<RemoteCompiler>(std::move(channel));
}

}  // namespace tinyfleet::server
