#pragma once

// FullyConnected on Arm cores with the DSP extension (Cortex-M4/M7/M33): one input row x
// two output neurons per inner loop (mac_dsp.h), the input offset added while widening
// (SXTAB16), weights read as stored.
#include "tinyfleet/kernels/ops/fully_connected.h"

#ifndef TINYFLEET_OPT_NS
#define TINYFLEET_OPT_NS opt
#endif

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

// Runs the layer and returns true, or returns false without touching the output when
// this build has no Arm DSP or the layer is outside the path (fewer than 2 outputs, an
// input offset outside -128..128, a negative multiplier).
bool fully_connected_dsp(const FullyConnectedParams& p, const PerChannelRequant& rq,
                         int32_t batches, int32_t in_features, const int8_t* input,
                         int32_t out_features, const int8_t* weights, const int32_t* bias,
                         int8_t* output);

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
