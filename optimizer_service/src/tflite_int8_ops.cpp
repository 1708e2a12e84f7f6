// The int8 path's table, reduction and data-movement operators (tflite_int8_builder.h):
// LOGISTIC, TANH, RELU, RELU6, HARD_SWISH, MEAN, PAD, PADV2, CONCATENATION, and TRANSPOSE
// and STRIDED_SLICE that move elements (tflite_fold.cpp computed the moves), each checking what
// TFLM's Prepare checks and deriving its integer parameters as TFLM does.
#include <algorithm>

#include "tflite_int8_builder.h"
#include "tflite_operands.h"
#include "tflite_tables.h"
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::optimizer_service::tflite_int8 {

// LOGISTIC, TANH, RELU, RELU6 and HARD_SWISH: element-wise on int8, one 256-entry table
// of TFLM's results (tflite_tables.h); LOGISTIC and TANH keep their own kinds.
Status lookup(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  auto qx = b.quant(o.inputs[0], o.name);
  if (!qx) return qx.error();
  auto qy = b.quant(o.outputs[0], o.name);
  if (!qy) return qy.error();
  if (b.tensor(o.inputs[0]).elements() != b.tensor(o.outputs[0]).elements()) {
    return CompileError{o.name + ": input and output shapes differ"};
  }
  int8_t table[256];
  auto r = tflite_tables::build(o.code, *qx, *qy, table);
  if (!r) return CompileError{o.name + ": " + r.error().message};
  op.lut_i8.assign(table, table + 256);
  op.kind = o.code == kLogistic ? fa::OpKind_Logistic
                                : (o.code == kTanh ? fa::OpKind_Tanh : fa::OpKind_Lookup);
  n.type = OpType::kLogistic;  // to the planner: element-wise, may run in place
  return true;
}

// MEAN over H and W (the axes, mapped to NHWC, may also name dimensions of extent 1), as
// TFLM's QuantizedMeanOrSum: QuantizeMultiplier(input / output scale), then the 1/count
// folded into it with a shift of floor(log2(count)) (at most 32 and 31 + shift).
Status mean(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  auto qx = b.quant(o.inputs[0], o.name);
  if (!qx) return qx.error();
  auto qy = b.quant(o.outputs[0], o.name);
  if (!qy) return qy.error();
  if (auto r = tflite_operands::check_mean_over_hw(b.m, o); !r) return r;
  const k::Dims xd = dims_of(b.tensor(o.inputs[0]).shape);
  int32_t m = 0;
  int s = 0;
  k::quantize_multiplier(static_cast<double>(qx->scale) / static_cast<double>(qy->scale), &m, &s);
  const int64_t count = int64_t{xd.h} * xd.w;
  int shift = 0;
  while ((int64_t{2} << shift) <= count) ++shift;
  shift = std::min({shift, 32, 31 + s});
  m = static_cast<int32_t>((static_cast<int64_t>(m) << shift) / count);
  s -= shift;
  if (s > 30 || s < -31) return CompileError{o.name + ": input / output scale out of range"};
  op.mean.input_offset = -qx->zero_point;
  op.mean.output_offset = qy->zero_point;
  op.mean.multiplier = m;
  op.mean.shift = s;
  op.kind = fa::OpKind_Mean;
  n.type = OpType::kMean;
  return true;
}

// PAD with the output's zero point (TFLM's value without constant_values), PADV2 with its
// int8 constant_values (one value of the output's quantization, as TFLM's Prepare checks);
// paddings [rank, 2] constant, input and output of one quantization.
Status pad(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  if (auto s = same_quantization(b, o); !s) return s;
  if (auto r = tflite_operands::paddings_nhwc(b.m, o, n.pad_before, n.pad_after); !r) return r;
  op.pad_before.assign(n.pad_before, n.pad_before + 4);
  op.pad_after.assign(n.pad_after, n.pad_after + 4);
  if (o.code == kPadV2 && o.inputs.size() > 2 && o.inputs[2] >= 0) {
    const TfliteTensor& v = b.tensor(o.inputs[2]);
    if (v.type != kTfliteInt8 || v.data.size() != 1 || v.scale.size() != 1 ||
        v.scale != b.tensor(o.outputs[0]).scale ||
        v.zero_point != b.tensor(o.outputs[0]).zero_point) {
      return CompileError{o.name +
                          ": constant_values must be one constant int8 value of the output's "
                          "quantization"};
    }
    op.has_pad_value = true;
    op.pad_value = static_cast<int8_t>(v.data[0]);
  }
  op.kind = fa::OpKind_Pad;
  n.type = OpType::kPad;
  return true;
}

// TRANSPOSE and STRIDED_SLICE on an activation: a byte gather (fold_tflite_layout gave the
// moves as o.copy), input and output of one quantization as TFLM requires.
Status strided_copy(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  if (auto s = same_quantization(b, o); !s) return s;
  op.copy_offset = o.copy.offset;
  op.copy_count.assign(o.copy.count, o.copy.count + 4);
  op.copy_step.assign(o.copy.step, o.copy.step + 4);
  const bool transpose = o.code == kTranspose;
  op.kind = transpose ? fa::OpKind_Transpose : fa::OpKind_StridedSlice;
  n.type = transpose ? OpType::kTranspose : OpType::kStridedSlice;
  n.copy = o.copy;
  return true;
}

// CONCATENATION of int8 activations of one quantization (TFLM copies the bytes), no
// fused activation, at most 16 inputs.
Status concatenation(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  auto axis = tflite_operands::concatenation_axis(b.m, o);
  if (!axis) return axis.error();
  auto qy = b.quant(o.outputs[0], o.name);
  if (!qy) return qy.error();
  for (size_t i = 0; i < o.inputs.size(); ++i) {
    const int32_t t = o.inputs[i];
    auto q = b.quant(t, o.name);
    if (!q) return q.error();
    if (*q != *qy) return CompileError{o.name + ": inputs and output quantization differ"};
    if (i == 0) continue;
    auto a = b.activation(t, o.name);
    if (!a) return a.error();
    op.inputs.push_back(*a);
    n.inputs.push_back(b.graph_tensor(t));
  }
  op.axis = n.axis = *axis;
  op.kind = fa::OpKind_Concatenation;
  n.type = OpType::kConcatenation;
  return true;
}
}  // namespace tinyfleet::optimizer_service::tflite_int8
