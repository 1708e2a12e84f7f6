#pragma once

// One compile for one device class, as fleetd and the Optimizer worker both run it:
// the uploaded files' bytes and the class's catalog entry in; an artifact with its typed
// outputs, or a refusal with its reason, and the report as JSON (for people) out.
// `onnx` may also be a .tflite (FlatBuffer identifier "TFL3"): a fully int8 model is
// compiled with its own quantization (tflite_import.h) and needs no calibration data; a
// float one is calibrated and quantized as an ONNX model is. `model_format` is the format
// the upload declared ("onnx" or "tflite"; empty: detected from the bytes): bytes not in
// it are refused, naming both.
#include <string>

#include "tinyfleet/optimizer_service/compile_outputs.h"

namespace tinyfleet::optimizer_service {

struct ClassCompileOutcome {
  bool refused = false;
  std::string refusal_reason;
  std::string artifact;
  CompileOutputs outputs;  // set when not refused
  std::string report_json = "{}";
};

ClassCompileOutcome compile_for_class(const std::string& onnx, const std::string& calibration_npz,
                                      const std::string& validation_npz,
                                      const std::string& device_class,
                                      const std::string& device_class_json,
                                      const std::string& model_format = "");

}  // namespace tinyfleet::optimizer_service
