#pragma once

// TensorFlow Lite (.tflite, schema version 3) import, read through the published schema
// (optimizer_service/schema/tflite.fbs, compiled by flatc at build time).
//
// `read_tflite` checks everything it hands on: the FlatBuffer verifies, subgraph 0 exists,
// every tensor, buffer and operator-code index is in range, shapes are positive and not
// too large, constant buffers hold exactly shape x element size bytes, quantization has
// one scale (per tensor) or one per channel of `quantized_dimension`, scales are finite
// and positive. Anything else is an error value naming the tensor or operator.
//
// `compile_tflite_int8` turns a fully int8 model (int8 activations and weights, int32
// biases) into an artifact keeping the model's own scales and zero points: the
// requantization multipliers are derived exactly as TensorFlow Lite Micro derives them
// (QuantizeMultiplier of input scale x filter scale / output scale, in double), so the
// kernels' runtime computes what TFLM's reference kernels compute (docs/optimizer.md
// lists the one operator where it does not: SOFTMAX). Operators outside the supported set
// are refused: `operator 'X' (builtin code N) is not supported`.
#include <cstdint>
#include <string>
#include <vector>

#include "tinyfleet/kernels/ops/data_movement.h"
#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/result.h"

namespace tinyfleet::optimizer_service {

// The FlatBuffer file identifier "TFL3" at bytes 4..7.
bool is_tflite(const std::string& bytes);

// TFLite's TensorType codes the importer distinguishes.
constexpr int kTfliteFloat32 = 0;
constexpr int kTfliteInt32 = 2;
constexpr int kTfliteInt8 = 9;

struct TfliteTensor {
  std::string name;
  int type = 0;                // tflite::TensorType
  std::vector<int32_t> shape;  // as written (rank 0 to 4)
  std::string data;            // constant bytes; empty: an activation
  std::vector<float> scale;    // empty: not quantized
  std::vector<int64_t> zero_point;
  int32_t quantized_dimension = 0;
  int64_t elements() const;
};

// Padding and activation use TFLite's codes (Padding: 0 SAME, 1 VALID; activation:
// 0 NONE, 1 RELU, 2 RELU_N1_TO_1, 3 RELU6, 4 TANH, 5 SIGN_BIT).
struct TfliteOperator {
  int32_t code = 0;                      // BuiltinOperator
  std::string name;                      // "operator 3 'CONV_2D'"
  std::vector<int32_t> inputs, outputs;  // -1: an omitted optional input
  bool has_options = false;              // the options table matching the operator
  int padding = 0;
  int32_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int32_t filter_h = 1, filter_w = 1, depth_multiplier = 1;
  int activation = 0;
  int weights_format = 0;
  float beta = 1.0f;
  int32_t axis = 0;        // CONCATENATION
  bool keep_dims = false;  // MEAN
  // STRIDED_SLICE's masks (bit i: dimension i) and its `offset` (end relative to begin).
  int32_t begin_mask = 0, end_mask = 0, ellipsis_mask = 0, new_axis_mask = 0, shrink_axis_mask = 0;
  bool slice_offset = false;
  // TRANSPOSE and STRIDED_SLICE of an activation that move elements: the gather
  // fold_tflite_layout computed (operands then dropped: only the input remains).
  kernels::StridedCopyParams copy;
};

struct TfliteModel {
  std::vector<TfliteTensor> tensors;
  std::vector<TfliteOperator> operators;
  std::vector<int32_t> inputs, outputs;
};

// The published name of a builtin operator code ("CONV_2D"), or "UNKNOWN".
const char* tflite_operator_name(int32_t code);

Result<TfliteModel> read_tflite(const std::string& bytes);

// Layout operators folded away before either path maps the model: SQUEEZE becomes a
// RESHAPE; TRANSPOSE (perm constant) and STRIDED_SLICE (begin, end, strides constant;
// no ellipsis or new-axis masks) of a constant are computed into a constant; of an
// activation they become a RESHAPE when they keep every element in its order (a
// transpose that moves only size-1 dimensions, a slice that takes everything), and
// otherwise stay, with only their input and the gather in `copy` (the runtime's
// Transpose and StridedSlice operators); a RESHAPE of a constant is folded too.
Result<TfliteModel> fold_tflite_layout(const TfliteModel& m);

// Each operator of `m` the int8 path maps, or the refusal it would give; for reports.
std::vector<std::string> tflite_operator_coverage(const TfliteModel& m);

// A fully int8 model to an artifact with its own quantization (see above). The report's
// quantization fields are the model's; the written artifact is loaded and run (its
// self-test vectors) before this returns.
Result<CompiledModel> compile_tflite_int8(const TfliteModel& m, const CompileOptions& options);

// A float model (float32 activations; float32 weights, or int8 weights of a dynamic-range
// model, dequantized per channel) as the compiler's float graph, for compile_graph's
// calibration and quantization. Operators: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
// AVERAGE_POOL_2D, MAX_POOL_2D, ADD, MUL, RESHAPE, SOFTMAX, MEAN, PAD, PADV2,
// CONCATENATION, LOGISTIC, TANH, RELU, RELU6, HARD_SWISH, TRANSPOSE, STRIDED_SLICE;
// others refused by name.
Result<Graph> tflite_float_graph(const TfliteModel& m);

// True when every activation the operators read is int8 (the model keeps its own
// quantization), false for a float (or dynamic-range) model.
bool tflite_is_int8(const TfliteModel& m);

}  // namespace tinyfleet::optimizer_service
