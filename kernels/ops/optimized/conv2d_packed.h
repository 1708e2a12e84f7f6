#pragma once

// Conv2D with packed weights (AVX2 builds): the filter is repacked once per call, on
// the stack, so that one broadcast pair of activations multiplies 8 output channels at
// once and the accumulators' lanes are the output channels (no horizontal sums).
#include "tinyfleet/kernels/ops/conv2d.h"

#ifndef TINYFLEET_OPT_NS
#define TINYFLEET_OPT_NS opt
#endif

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

// Runs the convolution and returns true, or returns false without touching the output
// when this build has no AVX2 or the packed filter would not fit its stack budget
// (72 KB: receptive field x output channels rounded up to 8, up to 36,864 values;
// 256 output channels; 2048-value receptive fields). Shapes must already be checked.
bool conv2d_packed(const Conv2DParams& p, const PerChannelRequant& rq, const Dims& in,
                   const int8_t* input, const Dims& f, const int8_t* filter, const int32_t* bias,
                   const Dims& out, int8_t* output);

// AVX2 builds only (packed_weights.cpp): the same with the weights packed once: the bytes a layer
// with this filter needs (0: no packed path), packing into them, and running from them (false when
// `packed` does not hold a layer of this filter's shape). Shapes must already be checked.
size_t conv2d_packed_bytes(const Dims& f);
bool conv2d_pack_into(const PerChannelRequant& rq, const Dims& f, const int8_t* filter,
                      const int32_t* bias, void* packed, size_t bytes);
bool conv2d_run_packed(const Conv2DParams& p, const Dims& in, const int8_t* input, const Dims& f,
                       const Dims& out, int8_t* output, const void* packed);

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
