// Reference pooling: windows clipped to the image (padding is excluded from averages).
#include "tinyfleet/kernels/ops/pooling.h"

#include <algorithm>

#include "../common/pool_shapes.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels {

namespace detail {
bool pool_shapes_ok(const PoolParams& p, const Dims& in, const Dims& out) {
  return p.filter_h > 0 && p.filter_w > 0 && p.stride_h > 0 && p.stride_w > 0 && in.n == out.n &&
         in.c == out.c &&
         out.h ==
             conv_output_extent(in.h, p.filter_h, p.stride_h, 1, p.padding.top, p.padding.bottom) &&
         out.w ==
             conv_output_extent(in.w, p.filter_w, p.stride_w, 1, p.padding.left, p.padding.right) &&
         out.h > 0 && out.w > 0 && activation_ok(p.activation);
}
}  // namespace detail

namespace ref {

Status average_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                      int8_t* output) {
  if (!detail::pool_shapes_ok(p, in, out)) return Status::kBadShape;
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      for (int32_t ox = 0; ox < out.w; ++ox) {
        const int32_t y0 = std::max<int32_t>(0, oy * p.stride_h - p.padding.top);
        const int32_t y1 = std::min<int32_t>(in.h, oy * p.stride_h - p.padding.top + p.filter_h);
        const int32_t x0 = std::max<int32_t>(0, ox * p.stride_w - p.padding.left);
        const int32_t x1 = std::min<int32_t>(in.w, ox * p.stride_w - p.padding.left + p.filter_w);
        const int32_t count = (y1 - y0) * (x1 - x0);
        for (int32_t c = 0; c < in.c; ++c) {
          int32_t sum = 0;
          for (int32_t y = y0; y < y1; ++y) {
            for (int32_t x = x0; x < x1; ++x) sum += input[((b * in.h + y) * in.w + x) * in.c + c];
          }
          int32_t avg = detail::rounded_average(sum, count);
          avg = std::min(std::max(avg, p.activation.min), p.activation.max);
          output[((b * out.h + oy) * out.w + ox) * out.c + c] = static_cast<int8_t>(avg);
        }
      }
    }
  }
  return Status::kOk;
}

Status max_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                  int8_t* output) {
  if (!detail::pool_shapes_ok(p, in, out)) return Status::kBadShape;
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      for (int32_t ox = 0; ox < out.w; ++ox) {
        const int32_t y0 = std::max<int32_t>(0, oy * p.stride_h - p.padding.top);
        const int32_t y1 = std::min<int32_t>(in.h, oy * p.stride_h - p.padding.top + p.filter_h);
        const int32_t x0 = std::max<int32_t>(0, ox * p.stride_w - p.padding.left);
        const int32_t x1 = std::min<int32_t>(in.w, ox * p.stride_w - p.padding.left + p.filter_w);
        for (int32_t c = 0; c < in.c; ++c) {
          int32_t m = -128;
          for (int32_t y = y0; y < y1; ++y) {
            for (int32_t x = x0; x < x1; ++x) {
              m = std::max<int32_t>(m, input[((b * in.h + y) * in.w + x) * in.c + c]);
            }
          }
          m = std::min(std::max(m, p.activation.min), p.activation.max);
          output[((b * out.h + oy) * out.w + ox) * out.c + c] = static_cast<int8_t>(m);
        }
      }
    }
  }
  return Status::kOk;
}

Status mean_hw(const MeanParams& p, const Dims& in, const int8_t* input, int8_t* output) {
  if (in.n <= 0 || in.h <= 0 || in.w <= 0 || in.c <= 0) return Status::kBadShape;
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t c = 0; c < in.c; ++c) {
      int32_t sum = 0;
      for (int32_t i = 0; i < in.h * in.w; ++i) {
        sum += input[(b * in.h * in.w + i) * in.c + c] + p.input_offset;
      }
      int32_t v = multiply_by_quantized_multiplier(sum, p.multiplier, p.shift) + p.output_offset;
      v = std::min<int32_t>(std::max<int32_t>(v, -128), 127);
      output[b * in.c + c] = static_cast<int8_t>(v);
    }
  }
  return Status::kOk;
}

}  // namespace ref
}  // namespace tinyfleet::kernels
