// Prepare/Eval of the pools and reductions over H and W (operator_registry.h):
// AveragePool2D, MaxPool2D and Mean.
#include <cstddef>

#include "operator_registry.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/pooling.h"

namespace tinyfleet::kernels::runtime_detail {

static_assert(offsetof(MeanParams, shift) == 12, "MeanOptions' four ints, in their order");

// A pool cannot requantize: int8 input and output share one quantization.
const char* prepare_pool(const PrepareContext& c) {
  const Geometry& g = c.g;
  if (c.inputs != 1 || !c.int8_io || c.xd.c != c.yd.c || c.xd.n != c.yd.n ||
      c.yd.h !=
          conv_output_extent(c.xd.h, g.filter_h, g.stride_h, 1, g.padding.top, g.padding.bottom) ||
      c.yd.w !=
          conv_output_extent(c.xd.w, g.filter_w, g.stride_w, 1, g.padding.left, g.padding.right) ||
      !same_quantization(c.x, c.y)) {
    return "pool shapes or quantization";
  }
  return nullptr;
}

Status eval_pool(const EvalContext& c) {
  const Geometry& g = c.g;
  PoolParams p;
  p.filter_h = g.filter_h;
  p.filter_w = g.filter_w;
  p.stride_h = g.stride_h;
  p.stride_w = g.stride_w;
  p.padding = g.padding;
  p.activation = g.activation;
  const auto* in8 = static_cast<const int8_t*>(c.x.data);
  auto* out8 = static_cast<int8_t*>(c.y.data);
  return c.op->kind() == artifact::OpKind_MaxPool2D
             ? opt::max_pool2d(p, c.x.dims, in8, c.y.dims, out8)
             : opt::average_pool2d(p, c.x.dims, in8, c.y.dims, out8);
}

// MeanOptions (or 1.1's int_params): input offset, output offset, multiplier, shift.
const char* prepare_mean(const PrepareContext& c) {
  MeanParams p;
  if (c.inputs != 1 || !c.int8_io ||
      !int_options(c.op, artifact::OperatorOptions_MeanOptions, 4, &p) || c.yd.n != c.xd.n ||
      c.yd.h != 1 || c.yd.w != 1 || c.yd.c != c.xd.c || int64_t{c.xd.h} * c.xd.w > 65536 ||
      !in_range(p.input_offset, -255, 255) || !in_range(p.output_offset, -128, 127) ||
      p.multiplier < 0 || !in_range(p.shift, -31, 30)) {
    return "mean shapes or parameters";
  }
  return nullptr;
}

Status eval_mean(const EvalContext& c) {
  MeanParams p;
  int_options(c.op, artifact::OperatorOptions_MeanOptions, 4, &p);  // checked
  return opt::mean_hw(p, c.x.dims, static_cast<const int8_t*>(c.x.data),
                      static_cast<int8_t*>(c.y.data));
}

}  // namespace tinyfleet::kernels::runtime_detail
