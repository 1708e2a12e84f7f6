// Prepare/Eval of the element-wise operators without weights (operator_registry.h):
// Logistic, Tanh and Lookup (a 256-entry table), Quantize and Dequantize at the graph's
// edges.
#include "operator_registry.h"
#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels::runtime_detail {

const char* prepare_lookup(const PrepareContext& c) {
  return c.inputs != 1 || !c.int8_io || len(c.op->lut_i8()) != 256 || count(c.xd) != count(c.yd)
             ? "lookup table or shapes"
             : nullptr;
}

Status eval_lookup(const EvalContext& c) {
  return opt::lookup(c.op->lut_i8()->data(), count(c.x.dims), static_cast<const int8_t*>(c.x.data),
                     static_cast<int8_t*>(c.y.data));
}

const char* prepare_quantize(const PrepareContext& c) {
  return c.inputs != 1 || c.x->type() != artifact::TensorType_Float32 ||
                 c.y->type() != artifact::TensorType_Int8 || count(c.xd) != count(c.yd)
             ? "quantize types or shapes"
             : nullptr;
}

Status eval_quantize(const EvalContext& c) {
  return quantize({c.y.scale, c.y.zero_point}, count(c.x.dims), static_cast<const float*>(c.x.data),
                  static_cast<int8_t*>(c.y.data));
}

const char* prepare_dequantize(const PrepareContext& c) {
  return c.inputs != 1 || c.x->type() != artifact::TensorType_Int8 ||
                 c.y->type() != artifact::TensorType_Float32 || count(c.xd) != count(c.yd)
             ? "dequantize types or shapes"
             : nullptr;
}

Status eval_dequantize(const EvalContext& c) {
  return dequantize({c.x.scale, c.x.zero_point}, count(c.x.dims),
                    static_cast<const int8_t*>(c.x.data), static_cast<float*>(c.y.data));
}

}  // namespace tinyfleet::kernels::runtime_detail
