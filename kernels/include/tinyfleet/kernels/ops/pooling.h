#pragma once

// AveragePool2D and MaxPool2D over NHWC (input and output share one quantization, as
// in TFLite), and Mean over H and W (GlobalAveragePool / ReduceMean), which may
// requantize.
#include "tinyfleet/kernels/ops/types.h"

namespace tinyfleet::kernels {

struct PoolParams {
  int32_t filter_h = 1, filter_w = 1;
  int32_t stride_h = 1, stride_w = 1;
  Padding padding;
  ActivationRange activation;
};

struct PoolFloatParams {
  int32_t filter_h = 1, filter_w = 1;
  int32_t stride_h = 1, stride_w = 1;
  Padding padding;
  FloatRange activation;
};

// Mean over H and W: out = MultiplyByQuantizedMultiplier(sum(x - in_zp), m, s) + out_zp
// with m, s from in_scale / (out_scale * H * W).
struct MeanParams {
  int32_t input_offset = 0;  // minus the input zero point
  int32_t output_offset = 0;
  int32_t multiplier = 0, shift = 0;
};
MeanParams make_mean_params(const TensorQuant& in, const TensorQuant& out, int32_t count);

namespace ref {
Status average_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                      int8_t* output);
Status max_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                  int8_t* output);
Status mean_hw(const MeanParams& p, const Dims& in, const int8_t* input, int8_t* output);
}  // namespace ref
namespace opt {
Status average_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                      int8_t* output);
Status max_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                  int8_t* output);
Status mean_hw(const MeanParams& p, const Dims& in, const int8_t* input, int8_t* output);
}  // namespace opt
// The same kernels built without SIMD (tested too).
namespace opt_scalar {
Status average_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                      int8_t* output);
Status max_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                  int8_t* output);
Status mean_hw(const MeanParams& p, const Dims& in, const int8_t* input, int8_t* output);
}  // namespace opt_scalar
namespace ref_float {
Status average_pool2d(const PoolFloatParams& p, const Dims& in, const float* input, const Dims& out,
                      float* output);
Status max_pool2d(const PoolFloatParams& p, const Dims& in, const float* input, const Dims& out,
                  float* output);
Status mean_hw(const Dims& in, const float* input, float* output);
}  // namespace ref_float

}  // namespace tinyfleet::kernels
