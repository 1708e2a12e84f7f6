// Prepare/Eval of the operators with weights (operator_registry.h): Conv2D,
// DepthwiseConv2D and FullyConnected, int8 with an int32 bias (input 2, -1: none) and
// per-output-channel requantization.
#include <cstring>

#include "operator_registry.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"
#include "tinyfleet/kernels/ops/fully_connected.h"
#if defined(TINYFLEET_RUNTIME_PACKS_WEIGHTS)
#include "tinyfleet/kernels/ops/packed_weights.h"
#endif

namespace tinyfleet::kernels::runtime_detail {

namespace {

// Biases within +-2^30, so bias plus at most 2^14 products of 8-bit values stays in int32.
bool bias_ok(const PrepareContext& c, const artifact::Tensor* t) {
  if (t->buffer() < 0) return false;
  const auto* data = c.model->buffers()->Get(static_cast<uint32_t>(t->buffer()))->data();
  for (size_t i = 0; i + 4 <= data->size(); i += 4) {
    int32_t v = 0;
    std::memcpy(&v, data->data() + i, 4);
    if (!in_range(v, -(int64_t{1} << 30), int64_t{1} << 30)) return false;
  }
  return true;
}

// What the three weighted kinds share, after their shapes: a constant int8 filter,
// `channels` requantization pairs a kernel can apply without overflow (multipliers >= 0,
// shifts in [-31, 30]), an optional constant int32 bias of `channels` values within
// +-2^30, at most 2^14 taps, and the scratch the kernel needs (else `scratch_refusal`).
const char* check_weighted(const PrepareContext& c, int32_t channels, int64_t taps, size_t scratch,
                           const char* scratch_refusal) {
  const auto* m = c.op->requant_multiplier();
  const auto* s = c.op->requant_shift();
  if (len(m) != static_cast<size_t>(channels) || len(s) != static_cast<size_t>(channels)) {
    return "requantization length differs from outputs";
  }
  bool ok = taps <= 16384;
  for (uint32_t i = 0; i < m->size(); ++i) {
    ok = ok && m->Get(i) >= 0 && in_range(s->Get(i), -31, 30);
  }
  const int32_t bias_idx = c.op->inputs()->Get(2);
  if (bias_idx >= 0) {
    const auto* b = c.tensor(bias_idx);
    if (b->type() != artifact::TensorType_Int32 || count(dims_of(b)) != channels) {
      return "bias must be int32, one per output";
    }
    ok = ok && bias_ok(c, b);
  }
  if (!ok) return "requantization, bias or filter out of range";
  return scratch > c.model->scratch_bytes() ? scratch_refusal : nullptr;
}

const int32_t* bias_of(const EvalContext& c) {
  const int32_t idx = c.op->inputs()->Get(2);
  return idx >= 0 ? static_cast<const int32_t*>(c.interpreter.tensor(idx).data) : nullptr;
}

PerChannelRequant requant_of(const artifact::Operator* op) {
  return {op->requant_multiplier()->data(), op->requant_shift()->data()};
}

}  // namespace

const char* prepare_conv(const PrepareContext& c) {
  const bool dw = c.op->kind() == artifact::OpKind_DepthwiseConv2D;
  if (c.inputs != 3 || !c.int8_io) return "conv arity or types";
  const auto* w = c.tensor(c.op->inputs()->Get(1));
  const Dims wd = dims_of(w);
  if (w->buffer() < 0 || w->type() != artifact::TensorType_Int8) {
    return "conv filter must be constant int8";
  }
  const Geometry& g = c.g;
  const int32_t oc = dw ? wd.c : wd.n;
  if ((dw && (wd.n != 1 || wd.c != c.xd.c * g.depth_multiplier)) || (!dw && wd.c != c.xd.c) ||
      c.yd.c != oc || c.yd.n != c.xd.n ||
      c.yd.h != conv_output_extent(c.xd.h, wd.h, g.stride_h, g.dilation_h, g.padding.top,
                                   g.padding.bottom) ||
      c.yd.w != conv_output_extent(c.xd.w, wd.w, g.stride_w, g.dilation_w, g.padding.left,
                                   g.padding.right)) {
    return "conv shapes inconsistent";
  }
  return check_weighted(c, oc, int64_t{wd.h} * wd.w * (dw ? 1 : wd.c),
                        dw ? 0 : conv2d_scratch_size(wd), "scratch_bytes below the conv's need");
}

Status eval_conv(const EvalContext& c) {
  const auto* op = c.op;
  const TensorView w = c.interpreter.tensor(op->inputs()->Get(1));
  const auto* in8 = static_cast<const int8_t*>(c.x.data);
  auto* out8 = static_cast<int8_t*>(c.y.data);
  const auto* w8 = static_cast<const int8_t*>(w.data);
  const Geometry& g = c.g;
  DepthwiseParams p;
  p.input_offset = -c.x.zero_point;
  p.output_offset = c.y.zero_point;
  p.stride_h = g.stride_h;
  p.stride_w = g.stride_w;
  p.dilation_h = g.dilation_h;
  p.dilation_w = g.dilation_w;
  p.padding = g.padding;
  p.activation = g.activation;
#if defined(TINYFLEET_RUNTIME_PACKS_WEIGHTS)
  // Host builds: from the weights load() packed (nullptr: as the kernels below).
  if (op->kind() == artifact::OpKind_Conv2D) {
    return opt::conv2d_prepacked(p, requant_of(op), c.x.dims, in8, w.dims, w8, bias_of(c), c.y.dims,
                                 out8, c.scratch, c.scratch_bytes, c.packed);
  }
  p.depth_multiplier = g.depth_multiplier;
  return opt::depthwise_prepacked(p, requant_of(op), c.x.dims, in8, w.dims, w8, bias_of(c),
                                  c.y.dims, out8, c.packed);
#else
  if (op->kind() == artifact::OpKind_Conv2D) {
    return opt::conv2d(p, requant_of(op), c.x.dims, in8, w.dims, w8, bias_of(c), c.y.dims, out8,
                       c.scratch, c.scratch_bytes);
  }
  p.depth_multiplier = g.depth_multiplier;
  return opt::depthwise_conv2d(p, requant_of(op), c.x.dims, in8, w.dims, w8, bias_of(c), c.y.dims,
                               out8);
#endif
}

const char* prepare_fully_connected(const PrepareContext& c) {
  if (c.inputs != 3 || !c.int8_io) return "fc arity or types";
  const auto* w = c.tensor(c.op->inputs()->Get(1));
  const Dims wd = dims_of(w);
  const int32_t in_features = c.xd.h * c.xd.w * c.xd.c;
  if (w->buffer() < 0 || w->type() != artifact::TensorType_Int8 || wd.c != in_features ||
      wd.h != 1 || wd.w != 1 || count(c.yd) != int64_t{c.xd.n} * wd.n) {
    return "fc shapes inconsistent";
  }
  return check_weighted(c, wd.n, in_features, fully_connected_scratch_size(in_features),
                        "scratch_bytes below the fc's need");
}

Status eval_fully_connected(const EvalContext& c) {
  const TensorView w = c.interpreter.tensor(c.op->inputs()->Get(1));
  FullyConnectedParams p;
  p.input_offset = -c.x.zero_point;
  p.output_offset = c.y.zero_point;
  p.activation = c.g.activation;
  return opt::fully_connected(p, requant_of(c.op), c.x.dims.n, c.x.dims.h * c.x.dims.w * c.x.dims.c,
                              static_cast<const int8_t*>(c.x.data), w.dims.n,
                              static_cast<const int8_t*>(w.data), bias_of(c),
                              static_cast<int8_t*>(c.y.data), c.scratch, c.scratch_bytes);
}

}  // namespace tinyfleet::kernels::runtime_detail
