// The int8 path's table, reduction and data-movement operators (tflite_int8_builder.h):
// LOGISTIC, TANH, RELU, RELU6, HARD_SWISH, MEAN, PAD, CONCATENATION, each checking what
// TFLM's Prepare checks and deriving its integer parameters as TFLM does.
#include <algorithm>

#include "tflite_int8_builder.h"
#include "tflite_tables.h"
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::optimizer_service::tflite_int8 {

namespace {

// A constant int32 operand (MEAN's axes, PAD's paddings) as values.
Result<std::vector<int32_t>> int32_operand(Builder& b, const TfliteOperator& o, size_t k,
                                           const char* what) {
  if (o.inputs.size() <= k || o.inputs[k] < 0) return CompileError{o.name + ": needs " + what};
  const TfliteTensor& t = b.tensor(o.inputs[k]);
  if (t.type != kTfliteInt32 || t.data.empty()) {
    return CompileError{o.name + ": " + what + " must be a constant int32 tensor"};
  }
  return values_of<int32_t>(t.data);
}

// MEAN over H and W (the axes, mapped to NHWC, may also name dimensions of extent 1), as
// TFLM's QuantizedMeanOrSum: QuantizeMultiplier(input / output scale), then the 1/count

}  // namespace

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

// folded into it with a shift of floor(log2(count)) (at most 32 and 31 + shift).
Status mean(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  auto qx = b.quant(o.inputs[0], o.name);
  if (!qx) return qx.error();
  auto qy = b.quant(o.outputs[0], o.name);
  if (!qy) return qy.error();
  auto axes = int32_operand(b, o, 1, "axes");
  if (!axes) return axes.error();
  const TfliteTensor& x = b.tensor(o.inputs[0]);
  const k::Dims xd = dims_of(x.shape), yd = dims_of(b.tensor(o.outputs[0]).shape);
  bool reduced[4] = {false, false, false, false};
  for (int32_t a : *axes) {
    const int32_t p = axis_nhwc(a, x.shape.size());
    if (p < 0) return CompileError{o.name + ": axis " + std::to_string(a) + " out of range"};
    reduced[p] = true;
  }
  const int32_t ext[4] = {xd.n, xd.h, xd.w, xd.c};
  for (int p : {0, 3}) {
    if (reduced[p] && ext[p] != 1) {
      return CompileError{o.name + ": supported: the mean over height and width"};
    }
  }
  for (int p : {1, 2}) {
    if (!reduced[p] && ext[p] != 1) {
      return CompileError{o.name + ": supported: the mean over height and width"};
    }
  }
  if (yd.n != xd.n || yd.c != xd.c || yd.h != 1 || yd.w != 1) {
    return CompileError{o.name + ": output shape"};
  }
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
  op.int_params = {-qx->zero_point, qy->zero_point, m, s};
  op.kind = fa::OpKind_Mean;
  n.type = OpType::kMean;
  return true;
}

// PAD with the output's zero point (TFLM's value without constant_values); paddings
// [rank, 2] constant, input and output of one quantization.
Status pad(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  if (auto s = same_quantization(b, o); !s) return s;
  auto pads = int32_operand(b, o, 1, "paddings");
  if (!pads) return pads.error();
  const TfliteTensor& x = b.tensor(o.inputs[0]);
  const size_t rank = x.shape.size();
  if (pads->size() != rank * 2) return CompileError{o.name + ": paddings must be [rank, 2]"};
  op.pad_before.assign(4, 0);
  op.pad_after.assign(4, 0);
  for (size_t d = 0; d < rank; ++d) {
    const int32_t p = axis_nhwc(static_cast<int32_t>(d), rank);
    const int32_t before = (*pads)[2 * d], after = (*pads)[2 * d + 1];
    if (before < 0 || after < 0 || before > 4096 || after > 4096) {
      return CompileError{o.name + ": paddings must be in 0..4096"};
    }
    op.pad_before[static_cast<size_t>(p)] = n.pad_before[p] = before;
    op.pad_after[static_cast<size_t>(p)] = n.pad_after[p] = after;
  }
  const k::Dims xd = dims_of(x.shape), yd = dims_of(b.tensor(o.outputs[0]).shape);
  const int32_t in[4] = {xd.n, xd.h, xd.w, xd.c}, out[4] = {yd.n, yd.h, yd.w, yd.c};
  for (size_t p = 0; p < 4; ++p) {
    if (in[p] + op.pad_before[p] + op.pad_after[p] != out[p]) {
      return CompileError{o.name + ": output shape differs from the paddings'"};
    }
  }
  op.kind = fa::OpKind_Pad;
  n.type = OpType::kPad;
  return true;
}

// CONCATENATION of int8 activations of one quantization (TFLM copies the bytes), no
// fused activation, at most 16 inputs.
Status concatenation(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  if (!o.has_options) return CompileError{o.name + ": missing its options"};
  if (o.activation != 0) return CompileError{o.name + ": a fused activation is not supported"};
  if (o.inputs.size() > 16) return CompileError{o.name + ": more than 16 inputs"};
  const TfliteTensor& y = b.tensor(o.outputs[0]);
  const int32_t axis = axis_nhwc(o.axis, y.shape.size());
  if (axis < 0) return CompileError{o.name + ": axis " + std::to_string(o.axis) + " out of range"};
  auto qy = b.quant(o.outputs[0], o.name);
  if (!qy) return qy.error();
  int64_t total = 0;
  for (size_t i = 0; i < o.inputs.size(); ++i) {
    const int32_t t = o.inputs[i];
    if (t < 0) return CompileError{o.name + ": an omitted input"};
    auto q = b.quant(t, o.name);
    if (!q) return q.error();
    if (*q != *qy) return CompileError{o.name + ": inputs and output quantization differ"};
    if (b.tensor(t).shape.size() != y.shape.size()) return CompileError{o.name + ": input ranks"};
    total += b.tensor(t).elements();
    if (i == 0) continue;
    auto a = b.activation(t, o.name);
    if (!a) return a.error();
    op.inputs.push_back(*a);
    n.inputs.push_back(b.graph_tensor(t));
  }
  if (total != y.elements()) return CompileError{o.name + ": output size differs from the inputs'"};
  op.axis = n.axis = axis;
  op.kind = fa::OpKind_Concatenation;
  n.type = OpType::kConcatenation;
  return true;
}
}  // namespace tinyfleet::optimizer_service::tflite_int8
