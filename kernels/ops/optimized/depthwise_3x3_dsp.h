#pragma once

// DepthwiseConv2D 3x3 on Arm cores with the DSP extension: the pixels whose window lies
// inside the image, for layers of few channels (depthwise_3x3_dsp.cpp). The weights are
// widened to int16 pairs and the input offset folded into the bias once per layer, so a
// tap of four channels is 8 instructions, with no tap list. Pixel-sequential.
#include <cstdint>

#include "requant_dsp.h"

#ifndef TINYFLEET_OPT_NS
#define TINYFLEET_OPT_NS opt
#endif

namespace tinyfleet::kernels::TINYFLEET_OPT_NS::dsp {

constexpr int32_t kDw3x3MaxChannels = 64;

// One layer, prepared by dw3x3_prepare.
struct Dw3x3 {
  int32_t wide[kDw3x3MaxChannels / 4 * 9 * 2];  // per 4 channels, per tap: (w0,w2), (w1,w3)
  int32_t bias[kDw3x3MaxChannels];              // bias + input offset * sum of the weights
  int32_t c = 0, row_bytes = 0, step = 0;       // channels; input row and pixel step, bytes
  const Requant* rq = nullptr;
};

// False (nothing prepared) unless the layer is 3x3, depth multiplier 1, dilation 1, with
// channels a multiple of 4 up to kDw3x3MaxChannels. filter is [1, 3, 3, c].
bool dw3x3_prepare(const int8_t* filter, const int32_t* bias, int32_t c, int32_t input_offset,
                   int32_t in_w, int32_t stride_w, const Requant* rq, Dw3x3* k);

// `pixels` output pixels of one row, left to right: the first window's top-left input
// pixel is `corner`, each next one `step` bytes on; outputs from `out` on, c bytes each.
void dw3x3_span(const Dw3x3& k, const int8_t* corner, int32_t pixels, int8_t* out);

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS::dsp
