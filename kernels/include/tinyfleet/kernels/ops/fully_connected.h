#pragma once

// FullyConnected: input [batches, in] (any NHWC shape, flattened per batch), weights
// [out, in] per-output-channel quantized, int32 bias.
#include "tinyfleet/kernels/ops/types.h"

namespace tinyfleet::kernels {

struct FullyConnectedParams {
  int32_t input_offset = 0;
  int32_t output_offset = 0;
  ActivationRange activation;
};

// Scratch of the optimized kernel: the input row widened to int16.
size_t fully_connected_scratch_size(int32_t in_features);

namespace ref {
Status fully_connected(const FullyConnectedParams& params, const PerChannelRequant& requant,
                       int32_t batches, int32_t in_features, const int8_t* input,
                       int32_t out_features, const int8_t* weights, const int32_t* bias,
                       int8_t* output, void* scratch, size_t scratch_bytes);
}
namespace opt {
Status fully_connected(const FullyConnectedParams& params, const PerChannelRequant& requant,
                       int32_t batches, int32_t in_features, const int8_t* input,
                       int32_t out_features, const int8_t* weights, const int32_t* bias,
                       int8_t* output, void* scratch, size_t scratch_bytes);
}
// The same kernel built without SIMD (what a core without DSP/AVX2 runs); tested too.
namespace opt_scalar {
Status fully_connected(const FullyConnectedParams& params, const PerChannelRequant& requant,
                       int32_t batches, int32_t in_features, const int8_t* input,
                       int32_t out_features, const int8_t* weights, const int32_t* bias,
                       int8_t* output, void* scratch, size_t scratch_bytes);
}
namespace ref_float {
Status fully_connected(FloatRange activation, int32_t batches, int32_t in_features,
                       const float* input, int32_t out_features, const float* weights,
                       const float* bias, float* output);
}

}  // namespace tinyfleet::kernels
