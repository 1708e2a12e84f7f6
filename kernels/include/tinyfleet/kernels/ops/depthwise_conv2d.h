#pragma once

// DepthwiseConv2D with a depth multiplier: output channel oc = ic * multiplier + m.
// Filter layout [1, kh, kw, out_c].
#include "tinyfleet/kernels/ops/conv2d.h"

namespace tinyfleet::kernels {

struct DepthwiseParams : Conv2DParams {
  int32_t depth_multiplier = 1;
};

struct DepthwiseFloatParams : Conv2DFloatParams {
  int32_t depth_multiplier = 1;
};

namespace ref {
Status depthwise_conv2d(const DepthwiseParams& params, const PerChannelRequant& requant,
                        const Dims& input_dims, const int8_t* input, const Dims& filter_dims,
                        const int8_t* filter, const int32_t* bias, const Dims& output_dims,
                        int8_t* output);
}
namespace opt {
Status depthwise_conv2d(const DepthwiseParams& params, const PerChannelRequant& requant,
                        const Dims& input_dims, const int8_t* input, const Dims& filter_dims,
                        const int8_t* filter, const int32_t* bias, const Dims& output_dims,
                        int8_t* output);
}
// The same kernel built without SIMD (what a core without DSP/AVX2 runs); tested too.
namespace opt_scalar {
Status depthwise_conv2d(const DepthwiseParams& params, const PerChannelRequant& requant,
                        const Dims& input_dims, const int8_t* input, const Dims& filter_dims,
                        const int8_t* filter, const int32_t* bias, const Dims& output_dims,
                        int8_t* output);
}
namespace ref_float {
Status depthwise_conv2d(const DepthwiseFloatParams& params, const Dims& input_dims,
                        const float* input, const Dims& filter_dims, const float* filter,
                        const float* bias, const Dims& output_dims, float* output);
}

}  // namespace tinyfleet::kernels
