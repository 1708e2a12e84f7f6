#pragma once

// DepthwiseConv2D with packed weights (AVX2 builds): depth multiplier 1, channels in
// multiples of 8. The weights of two taps are interleaved as int16 pairs once per call,
// so one _mm256_madd_epi16 adds both taps' products for 8 channels.
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"

#ifndef TINYFLEET_OPT_NS
#define TINYFLEET_OPT_NS opt
#endif

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

// Runs the convolution and returns true, or returns false without touching the output
// when this build has no AVX2 or the layer is outside what the path handles (depth
// multiplier 1, channels a multiple of 8 up to 512, windows up to 26 taps, an input
// zero point inside int8). Shapes must already be checked.
bool depthwise_packed(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& in,
                      const int8_t* input, const Dims& f, const int8_t* filter, const int32_t* bias,
                      const Dims& out, int8_t* output);

// AVX2 builds only (packed_weights.cpp): the same with the weights packed once: the bytes this
// layer needs (0: no packed path), packing into them, and running from them (false when `packed`
// does not hold this layer). Shapes must already be checked.
size_t depthwise_packed_bytes(const DepthwiseParams& p, const Dims& f);
bool depthwise_pack_into(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& f,
                         const int8_t* filter, const int32_t* bias, void* packed, size_t bytes);
bool depthwise_run_packed(const DepthwiseParams& p, const Dims& in, const int8_t* input,
                          const Dims& f, const Dims& out, int8_t* output, const void* packed);

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
