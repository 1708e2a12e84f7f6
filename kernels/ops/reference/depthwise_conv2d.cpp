// Reference DepthwiseConv2D.
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"

#include "../common/conv_shapes.h"
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels::ref {

Status depthwise_conv2d(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& in,
                        const int8_t* input, const Dims& f, const int8_t* filter,
                        const int32_t* bias, const Dims& out, int8_t* output) {
  const int32_t m = p.depth_multiplier;
  if (m <= 0 || f.n != 1 || f.c != in.c * m || !detail::conv_shapes_ok(p, in, f, out, f.c)) {
    return Status::kBadShape;
  }
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      for (int32_t ox = 0; ox < out.w; ++ox) {
        for (int32_t ic = 0; ic < in.c; ++ic) {
          for (int32_t j = 0; j < m; ++j) {
            const int32_t oc = ic * m + j;
            int32_t acc = bias ? bias[oc] : 0;
            for (int32_t ky = 0; ky < f.h; ++ky) {
              const int32_t iy = oy * p.stride_h - p.padding.top + ky * p.dilation_h;
              if (iy < 0 || iy >= in.h) continue;
              for (int32_t kx = 0; kx < f.w; ++kx) {
                const int32_t ix = ox * p.stride_w - p.padding.left + kx * p.dilation_w;
                if (ix < 0 || ix >= in.w) continue;
                const int32_t x = input[((b * in.h + iy) * in.w + ix) * in.c + ic];
                const int32_t w = filter[(ky * f.w + kx) * f.c + oc];
                acc += (x + p.input_offset) * w;
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
  }
  return Status::kOk;
}

}  // namespace tinyfleet::kernels::ref
