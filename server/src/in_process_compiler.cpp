#include "artifact_outputs.h"
#include "tinyfleet/optimizer_service/class_compiler.h"
#include "tinyfleet/server/model_compiler.h"

namespace tinyfleet::server {

namespace {

// The compiler library in fleetd's own process.
class InProcessCompiler : public ModelCompiler {
 public:
  storage::Expected<CompileOutcome> compile(const CompileInput& in) override {
    auto r = optimizer_service::compile_for_class(in.onnx, in.calibration_npz, in.validation_npz,
                                                  in.device_class, in.device_class_json,
                                                  in.model_format);
    CompileOutcome o;
    o.refused = r.refused;
    o.refusal_reason = std::move(r.refusal_reason);
    o.artifact = std::move(r.artifact);
    o.report_json = std::move(r.report_json);
    if (!o.refused) o.outputs = to_record(r.outputs);
    return o;
  }
};

}  // namespace

std::unique_ptr<ModelCompiler> make_in_process_compiler() {
  return std::make_unique<InProcessCompiler>();
}

}  // namespace tinyfleet::server
