#pragma once

// Brings an ONNX model of opset 7 to 21 to the opsets the importer reads (11 to 17):
// older models are upgraded with libonnx's version converter (libonnx 1.12 knows opsets
// up to 17); models of opsets 18 to 21 are accepted when every operator is one the
// importer supports, written back in its opset-17 form (ReduceMean's axes input becomes
// the attribute; attributes that only matter for types we do not read are dropped).
// Anything else is refused naming the node, the operator and the opset. The checker and
// shape inference run on the result.
#include <onnx/onnx_pb.h>

#include <optional>

#include "tinyfleet/optimizer_service/result.h"

namespace tinyfleet::optimizer_service::onnx_import_detail {

// The default-domain opset the model declares (0 if none).
int64_t model_opset(const onnx::ModelProto& model);

// On success the model declares an opset in 11..17 and passed the checker.
std::optional<CompileError> normalize_opset(onnx::ModelProto& model);

}  // namespace tinyfleet::optimizer_service::onnx_import_detail
