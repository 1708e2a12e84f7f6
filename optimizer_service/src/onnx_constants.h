#pragma once

// ONNX constants (initializers, Constant nodes, and whatever is computed from them
// alone) as float values with their ONNX shape, and the folding of operators whose
// inputs are all constants: the shape arithmetic exporters leave behind (Shape of a
// static activation, Concat, Unsqueeze, Cast), weights behind Transpose, Mul, Identity,
// and DequantizeLinear of quantized weights and biases.
#include <onnx/onnx_pb.h>

#include <optional>
#include <string>
#include <vector>

#include "tinyfleet/optimizer_service/result.h"

namespace tinyfleet::optimizer_service::onnx_import_detail {

// The most elements one constant may hold (64 MiB of float32): larger ones are refused
// before anything is allocated.
constexpr int64_t kMaxConstantElements = int64_t{1} << 24;

// An integer held in a float constant (shapes, axes, pads) as int64, saturated at
// +-2^50 (NaN as -2^50), so that range checks refuse it instead of a cast overflowing.
inline int64_t as_int(float f) {
  constexpr float kLimit = 1125899906842624.0f;  // 2^50
  if (!(f > -kLimit)) return -(int64_t{1} << 50);
  if (f > kLimit) return int64_t{1} << 50;
  return static_cast<int64_t>(f);
}

struct Raw {
  std::vector<int64_t> shape;
  std::vector<float> values;
  int32_t type = onnx::TensorProto::FLOAT;  // the ONNX element type it was stored as
};

Result<Raw> to_raw(const onnx::TensorProto& t);

// The node evaluated on constant inputs (nullptr for an absent optional input), or
// nullopt if it is not an operator folded here.
std::optional<Result<Raw>> fold_constant(const onnx::NodeProto& n,
                                         const std::vector<const Raw*>& inputs);

}  // namespace tinyfleet::optimizer_service::onnx_import_detail
