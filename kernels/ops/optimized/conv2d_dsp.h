#pragma once

// Conv2D on Arm cores with the DSP extension (Cortex-M4/M7/M33): two output pixels x two
// output channels per inner loop (mac_dsp.h), the input offset folded into the bias
// once per call. Pointwise layers (1x1, stride 1, no padding) read the input in place;
// other layers copy the receptive fields of two output pixels into the scratch (int8,
// padding as the zero point) first, as CMSIS-NN does (im2col of two pixels).
#include "tinyfleet/kernels/ops/conv2d.h"

#ifndef TINYFLEET_OPT_NS
#define TINYFLEET_OPT_NS opt
#endif

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

// Runs the convolution and returns true, or returns false without touching the output
// when this build has no Arm DSP or the layer is outside the path (fewer than 2 or more
// than 256 output channels, a zero point outside int8, a negative multiplier, scratch
// below two receptive fields). Shapes must already be checked.
bool conv2d_dsp(const Conv2DParams& p, const PerChannelRequant& rq, const Dims& in,
                const int8_t* input, const Dims& f, const int8_t* filter, const int32_t* bias,
                const Dims& out, int8_t* output, void* scratch, size_t scratch_bytes);

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
