#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "tinyfleet/storage/error.h"
#include "tinyfleet/storage/records.h"

namespace tinyfleet::server {

struct CompileInput {
  std::string device_class;
  std::string device_class_json;  // the class's catalog entry
  std::string onnx;
  std::string calibration_npz;  // may be empty
  std::string validation_npz;   // may be empty
  std::string model_format;     // "onnx" or "tflite" as stored with the version
};

// A refusal is an outcome (the model does not fit, an operator is unsupported), stored
// with its reason; an Error means the compile could not be carried out at all.
struct CompileOutcome {
  bool refused = false;
  std::string refusal_reason;
  std::string artifact;
  storage::ArtifactOutputs outputs;  // typed: self-tests, drift baseline, cycles, memory plan
  std::string report_json = "{}";    // for people
};

class ModelCompiler {
 public:
  virtual ~ModelCompiler() = default;
  virtual storage::Expected<CompileOutcome> compile(const CompileInput& input) = 0;
};

// The optimizer library in this process.
std::unique_ptr<ModelCompiler> make_in_process_compiler();

// Compiles through the Optimizer gRPC service at `channel`.
std::unique_ptr<ModelCompiler> make_remote_compiler(std::shared_ptr<grpc::Channel> channel);

}  // namespace tinyfleet::server
