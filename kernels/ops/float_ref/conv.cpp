// Float32 references of the conv-like operators (the compiler's float graph runs on
// these; the int8 kernels are checked against them).
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"
#include "tinyfleet/kernels/ops/fully_connected.h"

namespace tinyfleet::kernels::ref_float {

namespace {
float clamp(float v, const FloatRange& r) { return v < r.min ? r.min : (v > r.max ? r.max : v); }

bool shapes_ok(const Conv2DFloatParams& p, const Dims& in, const Dims& f, const Dims& out,
               int32_t out_channels) {
  return p.stride_h > 0 && p.stride_w > 0 && p.dilation_h > 0 && p.dilation_w > 0 &&
         out.n == in.n && out.c == out_channels &&
         out.h == conv_output_extent(in.h, f.h, p.stride_h, p.dilation_h, p.padding.top,
                                     p.padding.bottom) &&
         out.w == conv_output_extent(in.w, f.w, p.stride_w, p.dilation_w, p.padding.left,
                                     p.padding.right);
}
}  // namespace

Status conv2d(const Conv2DFloatParams& p, const Dims& in, const float* input, const Dims& f,
              const float* filter, const float* bias, const Dims& out, float* output) {
  if (f.c != in.c || !shapes_ok(p, in, f, out, f.n)) return Status::kBadShape;
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      for (int32_t ox = 0; ox < out.w; ++ox) {
        for (int32_t oc = 0; oc < out.c; ++oc) {
          float acc = bias ? bias[oc] : 0.0f;
          for (int32_t ky = 0; ky < f.h; ++ky) {
            const int32_t iy = oy * p.stride_h - p.padding.top + ky * p.dilation_h;
            if (iy < 0 || iy >= in.h) continue;
            for (int32_t kx = 0; kx < f.w; ++kx) {
              const int32_t ix = ox * p.stride_w - p.padding.left + kx * p.dilation_w;
              if (ix < 0 || ix >= in.w) continue;
              for (int32_t ic = 0; ic < in.c; ++ic) {
                acc += input[((b * in.h + iy) * in.w + ix) * in.c + ic] *
                       filter[((oc * f.h + ky) * f.w + kx) * f.c + ic];
              }
            }
          }
          output[((b * out.h + oy) * out.w + ox) * out.c + oc] = clamp(acc, p.activation);
        }
      }
    }
  }
  return Status::kOk;
}

Status depthwise_conv2d(const DepthwiseFloatParams& p, const Dims& in, const float* input,
                        const Dims& f, const float* filter, const float* bias, const Dims& out,
                        float* output) {
  const int32_t m = p.depth_multiplier;
  if (m <= 0 || f.n != 1 || f.c != in.c * m || !shapes_ok(p, in, f, out, f.c)) {
    return Status::kBadShape;
  }
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      for (int32_t ox = 0; ox < out.w; ++ox) {
        for (int32_t oc = 0; oc < out.c; ++oc) {
          const int32_t ic = oc / m;
          float acc = bias ? bias[oc] : 0.0f;
          for (int32_t ky = 0; ky < f.h; ++ky) {
            const int32_t iy = oy * p.stride_h - p.padding.top + ky * p.dilation_h;
            if (iy < 0 || iy >= in.h) continue;
            for (int32_t kx = 0; kx < f.w; ++kx) {
              const int32_t ix = ox * p.stride_w - p.padding.left + kx * p.dilation_w;
              if (ix < 0 || ix >= in.w) continue;
              acc += input[((b * in.h + iy) * in.w + ix) * in.c + ic] *
                     filter[(ky * f.w + kx) * f.c + oc];
            }
          }
          output[((b * out.h + oy) * out.w + ox) * out.c + oc] = clamp(acc, p.activation);
        }
      }
    }
  }
  return Status::kOk;
}

Status fully_connected(FloatRange activation, int32_t batches, int32_t in_features,
                       const float* input, int32_t out_features, const float* weights,
                       const float* bias, float* output) {
  if (batches <= 0 || in_features <= 0 || out_features <= 0) return Status::kBadShape;
  for (int32_t b = 0; b < batches; ++b) {
    for (int32_t o = 0; o < out_features; ++o) {
      float acc = bias ? bias[o] : 0.0f;
      for (int32_t i = 0; i < in_features; ++i) {
        acc += input[b * in_features + i] * weights[o * in_features + i];
      }
      output[b * out_features + o] = clamp(acc, activation);
    }
  }
  return Status::kOk;
}

}  // namespace tinyfleet::kernels::ref_float
