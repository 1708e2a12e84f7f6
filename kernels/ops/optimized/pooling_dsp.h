#pragma once

// MaxPool2D, AveragePool2D and Mean on Arm cores with the DSP extension
// (pooling_dsp.cpp): four channels a word, bit for bit the reference's arithmetic.
// Pixel-sequential, a pixel's channels in groups of four (the in-place contract of
// in_place.h).
#include "tinyfleet/kernels/ops/pooling.h"

#ifndef TINYFLEET_OPT_NS
#define TINYFLEET_OPT_NS opt
#endif

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

// Each runs the operator and returns true, or returns false without touching the output
// when this build has no Arm DSP or the layer is outside the path: channels not a
// multiple of 4; AveragePool2D windows over 256 taps; Mean with a negative multiplier. Shapes must
// already be checked.
bool max_pool_dsp(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                  int8_t* output);
bool average_pool_dsp(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                      int8_t* output);
bool mean_dsp(const MeanParams& p, const Dims& in, const int8_t* input, int8_t* output);

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
