#pragma once

// Conv2D: int8 activations (asymmetric), int8 per-output-channel symmetric weights,
// int32 bias, TFLite requantization. Filter layout [out_c, kh, kw, in_c].
#include "tinyfleet/kernels/ops/types.h"

namespace tinyfleet::kernels {

struct Conv2DParams {
  int32_t input_offset = 0;   // minus the input zero point
  int32_t output_offset = 0;  // the output zero point
  int32_t stride_h = 1;
  int32_t stride_w = 1;
  int32_t dilation_h = 1;
  int32_t dilation_w = 1;
  Padding padding;
  ActivationRange activation;
};

struct Conv2DFloatParams {
  int32_t stride_h = 1;
  int32_t stride_w = 1;
  int32_t dilation_h = 1;
  int32_t dilation_w = 1;
  Padding padding;
  FloatRange activation;
};

// Output height/width for an input extent (shared by every conv-like operator).
int32_t conv_output_extent(int32_t input, int32_t filter, int32_t stride, int32_t dilation,
                           int32_t pad_before, int32_t pad_after);

// Scratch the optimized kernel needs (one receptive field widened to int16).
size_t conv2d_scratch_size(const Dims& filter);

namespace ref {
Status conv2d(const Conv2DParams& params, const PerChannelRequant& requant, const Dims& input_dims,
              const int8_t* input, const Dims& filter_dims, const int8_t* filter,
              const int32_t* bias, const Dims& output_dims, int8_t* output, void* scratch,
              size_t scratch_bytes);
}
namespace opt {
Status conv2d(const Conv2DParams& params, const PerChannelRequant& requant, const Dims& input_dims,
              const int8_t* input, const Dims& filter_dims, const int8_t* filter,
              const int32_t* bias, const Dims& output_dims, int8_t* output, void* scratch,
              size_t scratch_bytes);
}
// The same kernel built without SIMD (what a core without DSP/AVX2 runs); tested too.
namespace opt_scalar {
Status conv2d(const Conv2DParams& params, const PerChannelRequant& requant, const Dims& input_dims,
              const int8_t* input, const Dims& filter_dims, const int8_t* filter,
              const int32_t* bias, const Dims& output_dims, int8_t* output, void* scratch,
              size_t scratch_bytes);
}
namespace ref_float {
Status conv2d(const Conv2DFloatParams& params, const Dims& input_dims, const float* input,
              const Dims& filter_dims, const float* filter, const float* bias,
              const Dims& output_dims, float* output);
}

}  // namespace tinyfleet::kernels
