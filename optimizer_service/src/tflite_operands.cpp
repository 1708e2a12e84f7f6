// Constant operands and shape rules shared by the TFLite int8 and float paths
// (tflite_operands.h).
#include "tflite_operands.h"

#include <cstring>

#include "tflite_common.h"

namespace tinyfleet::optimizer_service::tflite_operands {

using namespace tflite_common;

Result<std::vector<int32_t>> int32_operand(const TfliteModel& m, const TfliteOperator& o, size_t k,
                                           const char* what) {
  if (o.inputs.size() <= k || o.inputs[k] < 0) {
    return CompileError{o.name + ": needs " + what};
  }
  const TfliteTensor& t = m.tensors[static_cast<size_t>(o.inputs[k])];
  if (t.type != kTfliteInt32 || t.data.empty()) {
    return CompileError{o.name + ": " + what + " must be a constant int32 tensor"};
  }
  std::vector<int32_t> v(t.data.size() / 4);
  std::memcpy(v.data(), t.data.data(), v.size() * 4);
  return v;
}

Result<bool> check_mean_over_hw(const TfliteModel& m, const TfliteOperator& o) {
  auto axes = int32_operand(m, o, 1, "axes");
  if (!axes) return axes.error();
  const TfliteTensor& x = m.tensors[static_cast<size_t>(o.inputs[0])];
  const kernels::Dims xd = dims_of(x.shape);
  const kernels::Dims yd = dims_of(m.tensors[static_cast<size_t>(o.outputs[0])].shape);
  bool reduced[4] = {false, false, false, false};
  for (int32_t a : *axes) {
    const int32_t p = axis_nhwc(a, x.shape.size());
    if (p < 0) return CompileError{o.name + ": axis " + std::to_string(a) + " out of range"};
    reduced[p] = true;
  }
  const int32_t ext[4] = {xd.n, xd.h, xd.w, xd.c};
  for (int p = 0; p < 4; ++p) {
    const bool over_hw = p == 1 || p == 2;
    if (reduced[p] != over_hw && ext[p] != 1) {
      return CompileError{o.name + ": supported: the mean over height and width"};
    }
  }
  if (yd.n != xd.n || yd.c != xd.c || yd.h != 1 || yd.w != 1) {
    return CompileError{o.name + ": output shape"};
  }
  return true;
}

Result<bool> paddings_nhwc(const TfliteModel& m, const TfliteOperator& o, int32_t before[4],
                           int32_t after[4]) {
  auto pads = int32_operand(m, o, 1, "paddings");
  if (!pads) return pads.error();
  const TfliteTensor& x = m.tensors[static_cast<size_t>(o.inputs[0])];
  const size_t rank = x.shape.size();
  if (pads->size() != rank * 2) return CompileError{o.name + ": paddings must be [rank, 2]"};
  for (int p = 0; p < 4; ++p) before[p] = after[p] = 0;
  for (size_t d = 0; d < rank; ++d) {
    const int32_t p = axis_nhwc(static_cast<int32_t>(d), rank);
    const int32_t b = (*pads)[2 * d], a = (*pads)[2 * d + 1];
    if (b < 0 || a < 0 || b > 4096 || a > 4096) {
      return CompileError{o.name + ": paddings must be in 0..4096"};
    }
    before[p] = b;
    after[p] = a;
  }
  const kernels::Dims xd = dims_of(x.shape);
  const kernels::Dims yd = dims_of(m.tensors[static_cast<size_t>(o.outputs[0])].shape);
  const int32_t in[4] = {xd.n, xd.h, xd.w, xd.c}, out[4] = {yd.n, yd.h, yd.w, yd.c};
  for (size_t p = 0; p < 4; ++p) {
    if (in[p] + before[p] + after[p] != out[p]) {
      return CompileError{o.name + ": output shape differs from the paddings'"};
    }
  }
  return true;
}

Result<int32_t> concatenation_axis(const TfliteModel& m, const TfliteOperator& o) {
  if (!o.has_options) return CompileError{o.name + ": missing its options"};
  if (o.activation != 0) return CompileError{o.name + ": a fused activation is not supported"};
  if (o.inputs.size() > 16) return CompileError{o.name + ": more than 16 inputs"};
  const TfliteTensor& y = m.tensors[static_cast<size_t>(o.outputs[0])];
  const int32_t axis = axis_nhwc(o.axis, y.shape.size());
  if (axis < 0) return CompileError{o.name + ": axis " + std::to_string(o.axis) + " out of range"};
  int64_t total = 0;
  for (int32_t t : o.inputs) {
    if (t < 0) return CompileError{o.name + ": an omitted input"};
    const TfliteTensor& x = m.tensors[static_cast<size_t>(t)];
    if (x.shape.size() != y.shape.size()) return CompileError{o.name + ": input ranks"};
    total += x.elements();
  }
  if (total != y.elements()) return CompileError{o.name + ": output size differs from the inputs'"};
  return axis;
}

}  // namespace tinyfleet::optimizer_service::tflite_operands
