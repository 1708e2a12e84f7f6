// Prepare/Eval of the operators that move bytes (operator_registry.h): Concatenation,
// Reshape, Pad, and Transpose and StridedSlice (one gather, StridedCopyOptions).
#include <cstring>

#include "operator_registry.h"
#include "tinyfleet/kernels/ops/data_movement.h"

namespace tinyfleet::kernels::runtime_detail {

namespace {

size_t element_size(const TensorView& v) { return v.type == artifact::TensorType_Int8 ? 1 : 4; }

// StridedCopyOptions as kernel parameters; false when absent or malformed, when the
// counts do not multiply to `out_elements`, or when an element reached leaves
// [0, in_elements).
bool strided_copy_params(const artifact::Operator* op, int64_t in_elements, int64_t out_elements,
                         StridedCopyParams* p) {
  const auto* o = op->options_as_StridedCopyOptions();
  if (!o || len(o->count()) != 4 || len(o->step()) != 4) return false;
  int64_t product = 1;
  p->offset = o->offset();
  for (uint32_t d = 0; d < 4; ++d) {
    p->count[d] = o->count()->Get(d);
    p->step[d] = o->step()->Get(d);
    if (!in_range(p->count[d], 1, out_elements) || !in_range(p->step[d], -(1 << 28), 1 << 28)) {
      return false;
    }
    product *= p->count[d];
    if (product > out_elements) return false;
  }
  int64_t lo = 0, hi = 0;
  return product == out_elements && strided_copy_span(*p, &lo, &hi) && lo >= 0 && hi < in_elements;
}

}  // namespace

const char* prepare_concatenation(const PrepareContext& c) {
  if (c.op->axis() < 0 || c.op->axis() > 3 || c.inputs > 16) {
    return "concatenation axis or arity";
  }
  int64_t total = 0;
  for (int32_t idx : *c.op->inputs()) {
    if (c.tensor(idx)->type() != c.y->type()) return "concatenation types differ";
    total += count(dims_of(c.tensor(idx)));
  }
  return total == count(c.yd) ? nullptr : "concatenation size";
}

Status eval_concatenation(const EvalContext& c) {
  Dims dims[16];
  const void* inputs[16];
  const uint32_t n = c.op->inputs()->size();
  for (uint32_t i = 0; i < n; ++i) {
    const TensorView v = c.interpreter.tensor(c.op->inputs()->Get(i));
    dims[i] = v.dims;
    inputs[i] = v.data;
  }
  return concatenation(c.op->axis(), static_cast<int32_t>(n), dims, inputs, element_size(c.y),
                       c.y.dims, c.y.data);
}

const char* prepare_reshape(const PrepareContext& c) {
  return count(c.xd) != count(c.yd) || c.x->type() != c.y->type() ? "reshape changes size or type"
                                                                  : nullptr;
}

Status eval_reshape(const EvalContext& c) {
  // Planned in place (same arena offset) costs nothing; otherwise one copy.
  if (c.x.data != c.y.data) std::memmove(c.y.data, c.x.data, c.y.bytes);
  return Status::kOk;
}

// PadOptions (PADV2's value) only on int8 outputs; without them, the zero point.
const char* prepare_pad(const PrepareContext& c) {
  const auto* before = c.op->pad_before();
  const auto* after = c.op->pad_after();
  if (c.inputs != 1 || c.x->type() != c.y->type() || len(before) != 4 || len(after) != 4 ||
      (c.op->options_type() != artifact::OperatorOptions_NONE &&
       (!c.op->options_as_PadOptions() || c.y->type() != artifact::TensorType_Int8))) {
    return "pad arity or parameters";
  }
  for (uint32_t j = 0; j < 4; ++j) {
    if (!in_range(before->Get(j), 0, 4096) || !in_range(after->Get(j), 0, 4096)) {
      return "pad amounts out of range";
    }
  }
  const int32_t in[4] = {c.xd.n, c.xd.h, c.xd.w, c.xd.c}, out[4] = {c.yd.n, c.yd.h, c.yd.w, c.yd.c};
  for (uint32_t j = 0; j < 4; ++j) {
    if (in[j] + before->Get(j) + after->Get(j) != out[j]) return "pad shapes";
  }
  return nullptr;
}

Status eval_pad(const EvalContext& c) {
  PadParams p;
  for (uint32_t i = 0; i < 4; ++i) {
    p.before[i] = c.op->pad_before()->Get(i);
    p.after[i] = c.op->pad_after()->Get(i);
  }
  const auto* options = c.op->options_as_PadOptions();
  const int8_t value8 = options ? options->int8_value() : static_cast<int8_t>(c.y.zero_point);
  const float zero = 0.0f;
  const bool is8 = c.y.type == artifact::TensorType_Int8;
  return pad(p, c.x.dims, c.x.data, element_size(c.y),
             is8 ? static_cast<const void*>(&value8) : &zero, c.y.dims, c.y.data);
}

// A gather cannot requantize: int8 input and output share one quantization.
const char* prepare_strided_copy(const PrepareContext& c) {
  StridedCopyParams p;
  if (c.inputs != 1 || c.x->type() != c.y->type() ||
      !strided_copy_params(c.op, count(c.xd), count(c.yd), &p) ||
      (c.int8_io && !same_quantization(c.x, c.y))) {
    return "strided copy options, shapes or quantization";
  }
  return nullptr;
}

Status eval_strided_copy(const EvalContext& c) {
  StridedCopyParams p;
  strided_copy_params(c.op, count(c.x.dims), count(c.y.dims), &p);  // checked at load
  return strided_copy(p, count(c.x.dims), c.x.data, element_size(c.y), c.y.data);
}

}  // namespace tinyfleet::kernels::runtime_detail
