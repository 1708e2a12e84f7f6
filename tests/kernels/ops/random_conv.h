#pragma once

// A seeded random convolution (shapes, strides, dilation, padding, quantization) for the
// kernel tests; `depthwise` gives a DepthwiseConv2D filter with `multiplier`; `channels`
// and `filters` (when > 0) fix the input channels and the Conv2D output channels.
#include <vector>

#include "random_tensors.h"
#include "tinyfleet/kernels/ops/conv2d.h"

namespace tinyfleet::kernels::testing {

struct ConvCase {
  Conv2DParams p;
  Dims in, f, out;
  std::vector<int8_t> input, filter;
  std::vector<int32_t> bias, mult, shift;
};

inline ConvCase random_conv(Rng& rng, bool depthwise, int32_t multiplier = 1, int32_t channels = 0,
                            int32_t filters = 0) {
  ConvCase c;
  const int32_t odd[] = {1, 3, 7, 17};
  c.in = {rng.range(1, 2), rng.range(1, 12), rng.range(1, 12),
          rng.range(0, 1) ? odd[rng.range(0, 3)] : rng.range(1, 40)};
  if (channels > 0) c.in.c = channels;
  c.f.h = rng.range(1, 5);
  c.f.w = rng.range(1, 5);
  c.p.stride_h = rng.range(1, 3);
  c.p.stride_w = rng.range(1, 3);
  c.p.dilation_h = rng.range(1, 2);
  c.p.dilation_w = rng.range(1, 2);
  c.p.padding = {rng.range(0, 2), rng.range(0, 2), rng.range(0, 2), rng.range(0, 2)};
  if (depthwise) {
    c.f.n = 1;
    c.f.c = c.in.c * multiplier;
  } else {
    c.f.n = filters > 0 ? filters : rng.range(1, 37);
    c.f.c = c.in.c;
  }
  c.out = {c.in.n,
           conv_output_extent(c.in.h, c.f.h, c.p.stride_h, c.p.dilation_h, c.p.padding.top,
                              c.p.padding.bottom),
           conv_output_extent(c.in.w, c.f.w, c.p.stride_w, c.p.dilation_w, c.p.padding.left,
                              c.p.padding.right),
           depthwise ? c.f.c : c.f.n};
  c.p.input_offset = -rng.zero_point();
  c.p.output_offset = rng.zero_point();
  c.p.activation = rng.activation();
  c.input = rng.int8s(static_cast<size_t>(c.in.elements()));
  c.filter = rng.int8s(static_cast<size_t>(c.f.elements()));
  c.bias = rng.biases(static_cast<size_t>(c.out.c), 1 << rng.range(4, 20));
  rng.requant(static_cast<size_t>(c.out.c), &c.mult, &c.shift);
  return c;
}

}  // namespace tinyfleet::kernels::testing
