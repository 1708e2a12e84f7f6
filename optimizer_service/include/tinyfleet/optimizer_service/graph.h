#pragma once

// The compiler's graph IR: NHWC tensors, operators as the kernels know them. ONNX
// import builds it; passes rewrite it; the float executor, the quantizer and the
// artifact writer read it.
#include <cstdint>
#include <string>
#include <vector>

#include "tinyfleet/kernels/ops/data_movement.h"
#include "tinyfleet/kernels/ops/types.h"

namespace tinyfleet::optimizer_service {

enum class OpType {
  kConv2D,
  kDepthwiseConv2D,
  kFullyConnected,
  kAdd,
  kMul,
  kAveragePool2D,
  kMaxPool2D,
  kMean,  // over H and W
  kConcatenation,
  kReshape,
  kPad,
  kSoftmax,
  kLogistic,
  kTanh,
  kClamp,         // a standalone ReLU / ReLU6 / Clip; fused into its producer by a pass
  kHardSwish,     // x * relu6(x + 3) / 6; int8: a 256-entry table (Lookup)
  kTranspose,     // element moves as Node::copy (kernels' strided_copy)
  kStridedSlice,  // likewise
};
const char* to_string(OpType t);

struct Tensor {
  std::string name;
  kernels::Dims dims;  // NHWC
  bool constant = false;
  std::vector<float> data;  // constants: values in the kernels' layout
  // Activations of a model imported in QDQ form keep the scale and zero point its
  // QuantizeLinear/DequantizeLinear pair gave them (int8), instead of calibrating.
  bool has_quant = false;
  kernels::TensorQuant quant;
};

struct Node {
  OpType type = OpType::kConv2D;
  std::string name;  // "node 3 'Conv'" style, for messages
  std::vector<int> inputs;
  std::vector<int> outputs;
  int32_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  kernels::Padding padding;
  int32_t filter_h = 1, filter_w = 1, depth_multiplier = 1, axis = 0;
  kernels::FloatRange activation;  // fused clamp (or the clamp itself for kClamp)
  float beta = 1.0f;
  int32_t pad_before[4] = {0, 0, 0, 0}, pad_after[4] = {0, 0, 0, 0};
  float pad_value = 0.0f;           // kPad: the new elements' value (TFLite's PADV2)
  kernels::StridedCopyParams copy;  // kTranspose, kStridedSlice
};

struct Graph {
  std::vector<Tensor> tensors;
  std::vector<Node> nodes;  // in execution order
  std::vector<int> inputs, outputs;
  int add_tensor(Tensor t) {
    tensors.push_back(std::move(t));
    return static_cast<int>(tensors.size()) - 1;
  }
};

}  // namespace tinyfleet::optimizer_service
