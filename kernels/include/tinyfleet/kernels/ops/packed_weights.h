#pragma once

// Weights packed once for the optimized Conv2D and DepthwiseConv2D (AVX2 builds), in the
// layout their inner loops read, with the biases and per-channel requantization constants
// prepared: a caller that runs a layer many times (the runtime at load, a benchmark
// before its timing) packs once into memory it owns and passes it to every call, instead
// of the per-call packing on the stack that opt::conv2d / opt::depthwise_conv2d do.
//
// A build or layer without a packed path reports size 0: then pass packed = nullptr and
// the *_prepacked calls are the plain opt:: calls. Packed memory may have any alignment
// (the functions align inside it) and is valid only for the filter, bias, requantization
// and (depthwise) input offset and depth multiplier it was packed from; a buffer that
// does not start with the layer's packed header is refused (kBadParams).
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"

namespace tinyfleet::kernels {

#define TINYFLEET_PACKED_WEIGHTS_API                                                               \
  size_t conv2d_packed_size(const Dims& filter_dims);                                              \
  Status conv2d_pack(const PerChannelRequant& requant, const Dims& filter_dims,                    \
                     const int8_t* filter, const int32_t* bias, void* packed,                      \
                     size_t packed_bytes);                                                         \
  Status conv2d_prepacked(const Conv2DParams& params, const PerChannelRequant& requant,            \
                          const Dims& input_dims, const int8_t* input, const Dims& filter_dims,    \
                          const int8_t* filter, const int32_t* bias, const Dims& output_dims,      \
                          int8_t* output, void* scratch, size_t scratch_bytes,                     \
                          const void* packed);                                                     \
  size_t depthwise_packed_size(const DepthwiseParams& params, const Dims& filter_dims);            \
  Status depthwise_pack(const DepthwiseParams& params, const PerChannelRequant& requant,           \
                        const Dims& filter_dims, const int8_t* filter, const int32_t* bias,        \
                        void* packed, size_t packed_bytes);                                        \
  Status depthwise_prepacked(const DepthwiseParams& params, const PerChannelRequant& requant,      \
                             const Dims& input_dims, const int8_t* input, const Dims& filter_dims, \
                             const int8_t* filter, const int32_t* bias, const Dims& output_dims,   \
                             int8_t* output, const void* packed);

namespace opt {
TINYFLEET_PACKED_WEIGHTS_API
}
// Without SIMD nothing is packed: the sizes are 0 and the calls forward.
namespace opt_scalar {
TINYFLEET_PACKED_WEIGHTS_API
}

#undef TINYFLEET_PACKED_WEIGHTS_API

}  // namespace tinyfleet::kernels
