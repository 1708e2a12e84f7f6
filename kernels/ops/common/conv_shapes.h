#pragma once

// Shape checks shared by the reference and optimized conv-like kernels.
#include "tinyfleet/kernels/ops/conv2d.h"

namespace tinyfleet::kernels::detail {

// An activation range clamps int8 outputs: it lies inside int8 and is not empty.
inline bool activation_ok(const ActivationRange& a) {
  return a.min <= a.max && a.min >= -128 && a.max <= 127;
}

inline bool conv_shapes_ok(const Conv2DParams& p, const Dims& in, const Dims& f, const Dims& out,
                           int32_t out_channels) {
  if (p.stride_h <= 0 || p.stride_w <= 0 || p.dilation_h <= 0 || p.dilation_w <= 0) return false;
  if (in.n <= 0 || in.h <= 0 || in.w <= 0 || in.c <= 0 || f.h <= 0 || f.w <= 0) return false;
  if (out.n != in.n || out.c != out_channels) return false;
  if (!activation_ok(p.activation)) return false;
  return out.h == conv_output_extent(in.h, f.h, p.stride_h, p.dilation_h, p.padding.top,
                                     p.padding.bottom) &&
         out.w == conv_output_extent(in.w, f.w, p.stride_w, p.dilation_w, p.padding.left,
                                     p.padding.right) &&
         out.h > 0 && out.w > 0;
}

inline int8_t requantize(int32_t acc, int32_t multiplier, int32_t shift, int32_t offset,
                         const ActivationRange& act);

}  // namespace tinyfleet::kernels::detail

#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels::detail {
inline int8_t requantize(int32_t acc, int32_t multiplier, int32_t shift, int32_t offset,
                         const ActivationRange& act) {
  acc = multiply_by_quantized_multiplier(acc, multiplier, shift) + offset;
  acc = acc < act.min ? act.min : acc;
  acc = acc > act.max ? act.max : acc;
  return static_cast<int8_t>(acc);
}
}  // namespace tinyfleet::kernels::detail
