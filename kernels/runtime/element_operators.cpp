// Prepare/Eval of the element-wise and reduction operators without weights
// (operator_registry.h): Logistic, Tanh and Lookup (a 256-entry table), Mean over H and W,
// Quantize and Dequantize at the graph's edges.
#include "operator_registry.h"
#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/pooling.h"
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels::runtime_detail {

const char* prepare_lookup(const PrepareContext& c) {
  return c.inputs != 1 || !c.int8_io || len(c.op->lut_i8()) != 256 ||
                 c.xd.elements() != c.yd.elements()
             ? "lookup table or shapes"
             : nullptr;
}

Status eval_lookup(const EvalContext& c) {
  return opt::lookup(c.op->lut_i8()->data(), c.x.dims.elements(),
                     static_cast<const int8_t*>(c.x.data), static_cast<int8_t*>(c.y.data));
}

// int_params: input offset, output offset, multiplier, shift.
const char* prepare_mean(const PrepareContext& c) {
  const auto* q = c.op->int_params();
  if (c.inputs != 1 || !c.int8_io || len(q) != 4 || c.yd.n != c.xd.n || c.yd.h != 1 ||
      c.yd.w != 1 || c.yd.c != c.xd.c || int64_t{c.xd.h} * c.xd.w > 65536 ||
      !in_range(q->Get(0), -255, 255) || !in_range(q->Get(1), -128, 127) || q->Get(2) < 0 ||
      !in_range(q->Get(3), -31, 30)) {
    return "mean shapes or parameters";
  }
  return nullptr;
}

Status eval_mean(const EvalContext& c) {
  const auto* q = c.op->int_params()->data();
  MeanParams p;
  p.input_offset = q[0];
  p.output_offset = q[1];
  p.multiplier = q[2];
  p.shift = q[3];
  return opt::mean_hw(p, c.x.dims, static_cast<const int8_t*>(c.x.data),
                      static_cast<int8_t*>(c.y.data));
}

const char* prepare_quantize(const PrepareContext& c) {
  return c.inputs != 1 || c.x->type() != artifact::TensorType_Float32 ||
                 c.y->type() != artifact::TensorType_Int8 || c.xd.elements() != c.yd.elements()
             ? "quantize types or shapes"
             : nullptr;
}

Status eval_quantize(const EvalContext& c) {
  return quantize({c.y.scale, c.y.zero_point}, c.x.dims.elements(),
                  static_cast<const float*>(c.x.data), static_cast<int8_t*>(c.y.data));
}

const char* prepare_dequantize(const PrepareContext& c) {
  return c.inputs != 1 || c.x->type() != artifact::TensorType_Int8 ||
                 c.y->type() != artifact::TensorType_Float32 || c.xd.elements() != c.yd.elements()
             ? "dequantize types or shapes"
             : nullptr;
}

Status eval_dequantize(const EvalContext& c) {
  return dequantize({c.x.scale, c.x.zero_point}, c.x.dims.elements(),
                    static_cast<const int8_t*>(c.x.data), static_cast<float*>(c.y.data));
}

}  // namespace tinyfleet::kernels::runtime_detail
