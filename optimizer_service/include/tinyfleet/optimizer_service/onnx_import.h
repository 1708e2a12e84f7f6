#pragma once

// ONNX (opsets 11-17) to the graph IR through libonnx: the checker and shape inference
// run first; NCHW becomes NHWC; weights are laid out as the kernels read them. Anything
// unsupported is refused naming the node and what is supported.
#include <string>

#include "tinyfleet/optimizer_service/graph.h"
#include "tinyfleet/optimizer_service/result.h"

namespace tinyfleet::optimizer_service {

Result<Graph> import_onnx(const std::string& model_bytes);

}  // namespace tinyfleet::optimizer_service
