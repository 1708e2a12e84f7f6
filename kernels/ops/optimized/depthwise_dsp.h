#pragma once

// DepthwiseConv2D on Arm cores with the DSP extension (Cortex-M4/M7/M33): depth
// multiplier 1, any channel count (4 channels at a time with SXTAB16/SMLAxy, the rest
// one by one). Pixel-sequential (the in-place contract of in_place.h).
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"

#ifndef TINYFLEET_OPT_NS
#define TINYFLEET_OPT_NS opt
#endif

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

// Runs the convolution and returns true, or returns false without touching the output
// when this build has no Arm DSP or the layer is outside the path (depth multiplier
// other than 1, an input offset outside -128..128, a negative multiplier, windows over
// 49 taps). Shapes must already be checked.
bool depthwise_dsp(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& in,
                   const int8_t* input, const Dims& f, const int8_t* filter, const int32_t* bias,
                   const Dims& out, int8_t* output);

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
