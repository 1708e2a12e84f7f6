// Float32 references of the element-wise, pooling and activation operators.
#include <algorithm>
#include <cmath>

#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/pooling.h"

namespace tinyfleet::kernels::ref_float {

namespace {
float clamp(float v, const FloatRange& r) { return v < r.min ? r.min : (v > r.max ? r.max : v); }
bool pool_ok(const PoolFloatParams& p, const Dims& in, const Dims& out) {
  return p.filter_h > 0 && p.filter_w > 0 && p.stride_h > 0 && p.stride_w > 0 && in.n == out.n &&
         in.c == out.c &&
         out.h ==
             conv_output_extent(in.h, p.filter_h, p.stride_h, 1, p.padding.top, p.padding.bottom) &&
         out.w ==
             conv_output_extent(in.w, p.filter_w, p.stride_w, 1, p.padding.left, p.padding.right);
}
}  // namespace

Status add(FloatRange activation, int64_t size, const float* in1, int64_t size2, const float* in2,
           float* out) {
  if (size <= 0 || (size2 != size && size2 != 1)) return Status::kBadShape;
  for (int64_t i = 0; i < size; ++i) out[i] = clamp(in1[i] + in2[size2 == 1 ? 0 : i], activation);
  return Status::kOk;
}

Status mul(FloatRange activation, int64_t size, const float* in1, int64_t size2, const float* in2,
           float* out) {
  if (size <= 0 || (size2 != size && size2 != 1)) return Status::kBadShape;
  for (int64_t i = 0; i < size; ++i) out[i] = clamp(in1[i] * in2[size2 == 1 ? 0 : i], activation);
  return Status::kOk;
}

Status average_pool2d(const PoolFloatParams& p, const Dims& in, const float* input, const Dims& out,
                      float* output) {
  if (!pool_ok(p, in, out)) return Status::kBadShape;
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      for (int32_t ox = 0; ox < out.w; ++ox) {
        const int32_t y0 = std::max<int32_t>(0, oy * p.stride_h - p.padding.top);
        const int32_t y1 = std::min<int32_t>(in.h, oy * p.stride_h - p.padding.top + p.filter_h);
        const int32_t x0 = std::max<int32_t>(0, ox * p.stride_w - p.padding.left);
        const int32_t x1 = std::min<int32_t>(in.w, ox * p.stride_w - p.padding.left + p.filter_w);
        for (int32_t c = 0; c < in.c; ++c) {
          float sum = 0;
          for (int32_t y = y0; y < y1; ++y) {
            for (int32_t x = x0; x < x1; ++x) sum += input[((b * in.h + y) * in.w + x) * in.c + c];
          }
          const int32_t count = (y1 - y0) * (x1 - x0);
          output[((b * out.h + oy) * out.w + ox) * out.c + c] =
              clamp(count > 0 ? sum / static_cast<float>(count) : 0.0f, p.activation);
        }
      }
    }
  }
  return Status::kOk;
}

Status max_pool2d(const PoolFloatParams& p, const Dims& in, const float* input, const Dims& out,
                  float* output) {
  if (!pool_ok(p, in, out)) return Status::kBadShape;
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      for (int32_t ox = 0; ox < out.w; ++ox) {
        const int32_t y0 = std::max<int32_t>(0, oy * p.stride_h - p.padding.top);
        const int32_t y1 = std::min<int32_t>(in.h, oy * p.stride_h - p.padding.top + p.filter_h);
        const int32_t x0 = std::max<int32_t>(0, ox * p.stride_w - p.padding.left);
        const int32_t x1 = std::min<int32_t>(in.w, ox * p.stride_w - p.padding.left + p.filter_w);
        for (int32_t c = 0; c < in.c; ++c) {
          float m = -3.4e38f;
          for (int32_t y = y0; y < y1; ++y) {
            for (int32_t x = x0; x < x1; ++x) {
              m = std::max(m, input[((b * in.h + y) * in.w + x) * in.c + c]);
            }
          }
          output[((b * out.h + oy) * out.w + ox) * out.c + c] = clamp(m, p.activation);
        }
      }
    }
  }
  return Status::kOk;
}

Status mean_hw(const Dims& in, const float* input, float* output) {
  if (in.n <= 0 || in.h <= 0 || in.w <= 0 || in.c <= 0) return Status::kBadShape;
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t c = 0; c < in.c; ++c) {
      double sum = 0;
      for (int32_t i = 0; i < in.h * in.w; ++i) sum += input[(b * in.h * in.w + i) * in.c + c];
      output[b * in.c + c] = static_cast<float>(sum / (in.h * in.w));
    }
  }
  return Status::kOk;
}

Status softmax(float beta, int32_t rows, int32_t depth, const float* input, float* output) {
  if (rows <= 0 || depth <= 0) return Status::kBadShape;
  for (int32_t r = 0; r < rows; ++r) {
    const float* x = input + static_cast<int64_t>(r) * depth;
    float* y = output + static_cast<int64_t>(r) * depth;
    const float max = *std::max_element(x, x + depth);
    double sum = 0;
    for (int32_t i = 0; i < depth; ++i) sum += std::exp(beta * (x[i] - max));
    for (int32_t i = 0; i < depth; ++i) {
      y[i] = static_cast<float>(std::exp(beta * (x[i] - max)) / sum);
    }
  }
  return Status::kOk;
}

Status logistic(int64_t size, const float* input, float* output) {
  for (int64_t i = 0; i < size; ++i) output[i] = 1.0f / (1.0f + std::exp(-input[i]));
  return Status::kOk;
}

Status tanh(int64_t size, const float* input, float* output) {
  for (int64_t i = 0; i < size; ++i) output[i] = std::tanh(input[i]);
  return Status::kOk;
}

Status relu(FloatRange range, int64_t size, const float* input, float* output) {
  for (int64_t i = 0; i < size; ++i) output[i] = clamp(input[i], range);
  return Status::kOk;
}

}  // namespace tinyfleet::kernels::ref_float
