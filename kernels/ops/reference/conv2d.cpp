// Reference Conv2D: the textbook loop, one output value at a time.
#include "tinyfleet/kernels/ops/conv2d.h"

#include "../common/conv_shapes.h"
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels {

int32_t conv_output_extent(int32_t input, int32_t filter, int32_t stride, int32_t dilation,
                           int32_t pad_before, int32_t pad_after) {
  const int32_t effective = (filter - 1) * dilation + 1;
  const int32_t span = input + pad_before + pad_after - effective;
  if (stride <= 0 || span < 0) return 0;
  return span / stride + 1;
}

size_t conv2d_scratch_size(const Dims& filter) {
  return static_cast<size_t>(filter.h) * filter.w * filter.c * sizeof(int16_t) + 32;
}

namespace ref {

Status conv2d(const Conv2DParams& p, const PerChannelRequant& rq, const Dims& in,
              const int8_t* input, const Dims& f, const int8_t* filter, const int32_t* bias,
              const Dims& out, int8_t* output, void*, size_t) {
  if (f.c != in.c || !detail::conv_shapes_ok(p, in, f, out, f.n)) return Status::kBadShape;
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      for (int32_t ox = 0; ox < out.w; ++ox) {
        for (int32_t oc = 0; oc < out.c; ++oc) {
          int32_t acc = bias ? bias[oc] : 0;
          for (int32_t ky = 0; ky < f.h; ++ky) {
            const int32_t iy = oy * p.stride_h - p.padding.top + ky * p.dilation_h;
            if (iy < 0 || iy >= in.h) continue;
            for (int32_t kx = 0; kx < f.w; ++kx) {
              const int32_t ix = ox * p.stride_w - p.padding.left + kx * p.dilation_w;
              if (ix < 0 || ix >= in.w) continue;
              for (int32_t ic = 0; ic < in.c; ++ic) {
                const int32_t x = input[((b * in.h + iy) * in.w + ix) * in.c + ic];
                const int32_t w = filter[((oc * f.h + ky) * f.w + kx) * f.c + ic];
                acc += (x + p.input_offset) * w;
              }
            }
          }
          acc = multiply_by_quantized_multiplier(acc, rq.multiplier[oc], rq.shift[oc]);
          acc += p.output_offset;
          acc = acc < p.activation.min ? p.activation.min : acc;
          acc = acc > p.activation.max ? p.activation.max : acc;
          output[((b * out.h + oy) * out.w + ox) * out.c + oc] = static_cast<int8_t>(acc);
        }
      }
    }
  }
  return Status::kOk;
}

}  // namespace ref
}  // namespace tinyfleet::kernels
