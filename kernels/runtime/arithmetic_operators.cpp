// Prepare/Eval of the operators with integer parameters as typed options
// (operator_registry.h): Add and Mul (AddOptions, MulOptions) of two int8 operands of one
// shape or a one-value second operand, and Softmax (SoftmaxOptions' mode, lut_u32's exp
// table). Artifacts before format 1.2 give the same integers as int_params.
#include <cstddef>

#include "operator_registry.h"
#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/elementwise.h"

namespace tinyfleet::kernels::runtime_detail {

namespace {

static_assert(offsetof(AddParams, output_shift) == 36, "AddOptions' ten ints, in their order");
static_assert(offsetof(MulParams, output_shift) == 16, "MulOptions' five ints, in their order");

bool is_add(const artifact::Operator* op) { return op->kind() == artifact::OpKind_Add; }

// Add's or Mul's parameters (the activation from the operator); false without them.
bool add_params(const artifact::Operator* op, AddParams* p) {
  return int_options(op, artifact::OperatorOptions_AddOptions, 10, p);
}
bool mul_params(const artifact::Operator* op, MulParams* p) {
  return int_options(op, artifact::OperatorOptions_MulOptions, 5, p);
}

// 0: the runtime's table softmax, 1: TFLM's; -1: malformed options.
int32_t softmax_mode(const artifact::Operator* op) {
  int32_t mode = artifact::SoftmaxMode_Table;
  if ((op->options_type() != artifact::OperatorOptions_NONE || len(op->int_params()) != 0) &&
      !int_options(op, artifact::OperatorOptions_SoftmaxOptions, 1, &mode)) {
    return -1;
  }
  return mode;
}

}  // namespace

// In1, in2 and output offsets, then Add's left shift and (multiplier, shift) pairs.
const char* prepare_add_mul(const PrepareContext& c) {
  int32_t q[10];
  const bool add = is_add(c.op);
  const uint32_t n = add ? 10 : 5;
  if (c.inputs != 2 || !c.int8_io ||
      !int_options(
          c.op, add ? artifact::OperatorOptions_AddOptions : artifact::OperatorOptions_MulOptions,
          n, q)) {
    return "add/mul arity, types or parameters";
  }
  bool ok = in_range(q[0], -255, 255) && in_range(q[1], -255, 255) && in_range(q[2], -128, 127) &&
            (!add || in_range(q[3], 0, 20));
  for (uint32_t j = add ? 4 : 3; j < n; j += 2) {
    ok = ok && q[j] >= 0 && in_range(q[j + 1], -31, 30);
  }
  if (!ok) return "add/mul parameters out of range";
  const auto* x2 = c.tensor(c.op->inputs()->Get(1));
  const int64_t n2 = count(dims_of(x2));
  if (count(c.xd) != count(c.yd) || (n2 != count(c.yd) && n2 != 1) ||
      x2->type() != artifact::TensorType_Int8) {
    return "add/mul shapes";
  }
  return nullptr;
}

Status eval_add_mul(const EvalContext& c) {
  const TensorView x2 = c.interpreter.tensor(c.op->inputs()->Get(1));
  const int64_t n = count(c.y.dims), n2 = count(x2.dims);
  const auto* in1 = static_cast<const int8_t*>(c.x.data);
  const auto* in2 = static_cast<const int8_t*>(x2.data);
  auto* out = static_cast<int8_t*>(c.y.data);
  if (is_add(c.op)) {
    AddParams p;
    add_params(c.op, &p);  // checked at load
    p.activation = c.g.activation;
    return opt::add(p, n, in1, n2, in2, out);
  }
  MulParams p;
  mul_params(c.op, &p);  // checked at load
  p.activation = c.g.activation;
  return opt::mul(p, n, in1, n2, in2, out);
}

// TFLM's mode: its exp(0) is the Q0.31 one and a row has at most 256 values.
const char* prepare_softmax(const PrepareContext& c) {
  const auto* table = c.op->lut_u32();
  if (c.inputs != 1 || !c.int8_io || len(table) != 256 || !same_dims(c.xd, c.yd) ||
      table->Get(0) == 0) {
    return "softmax table or shapes";
  }
  const int32_t mode = softmax_mode(c.op);
  if (mode != artifact::SoftmaxMode_Table &&
      (mode != artifact::SoftmaxMode_Tflm || table->Get(0) != 0x7fffffffu || c.yd.c > 256)) {
    return "softmax mode, table or depth";
  }
  return nullptr;
}

Status eval_softmax(const EvalContext& c) {
  const int32_t rows = static_cast<int32_t>(count(c.x.dims) / c.x.dims.c);
  const auto* in8 = static_cast<const int8_t*>(c.x.data);
  auto* out8 = static_cast<int8_t*>(c.y.data);
  const uint32_t* table = c.op->lut_u32()->data();
  return softmax_mode(c.op) == artifact::SoftmaxMode_Tflm
             ? ref::softmax_tflm(table, rows, c.x.dims.c, in8, out8)
             : opt::softmax(table, rows, c.x.dims.c, in8, out8);
}

}  // namespace tinyfleet::kernels::runtime_detail
