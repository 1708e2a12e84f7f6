#pragma once

// Requantization of int32 accumulators on Arm cores with the DSP extension, shared by the
// DSP paths of Conv2D, FullyConnected, DepthwiseConv2D, Add, Mul and Mean (requant_dsp.cpp).
#include <cstdint>

#include "tinyfleet/kernels/ops/types.h"

#ifndef TINYFLEET_OPT_NS
#define TINYFLEET_OPT_NS opt
#endif

namespace tinyfleet::kernels::TINYFLEET_OPT_NS::dsp {

// What requantize_run needs of a layer: per-channel multipliers and shifts, the output
// zero point and the clamp.
struct Requant {
  const int32_t* multiplier = nullptr;
  const int32_t* shift = nullptr;
  int32_t out_offset = 0, lo = -128, hi = 127;
  // Every shift in [-31, -2]: the shortest assembly loop; in [-30, 0]: the other one;
  // otherwise TFLite's C arithmetic.
  enum class Loop : uint8_t { kShort, kRound, kC } loop = Loop::kC;
};

// Fills r for `channels` output channels; false when a multiplier is negative (the DSP
// paths then leave the layer to the portable one).
bool requant_setup(const PerChannelRequant& rq, int32_t channels, int32_t out_offset,
                   const ActivationRange& activation, Requant* r);

// o[k] = requantized acc[k] of channel ch + k, k < n (TFLite's arithmetic, bit for bit).
void requantize_run(const Requant& r, const int32_t* acc, int32_t ch, int32_t n, int8_t* o);

// One multiplier and shift for every value (the outputs of Add, Mul and Mean):
// requantize_uniform(u, acc, n, o) for blocks of n <= kUniformBlock values.
constexpr int32_t kUniformBlock = 32;
struct UniformRequant {
  int32_t multiplier[kUniformBlock], shift[kUniformBlock];
  Requant r;  // points into this struct: do not copy
};
bool uniform_requant_setup(int32_t multiplier, int32_t shift, int32_t out_offset,
                           const ActivationRange& activation, UniformRequant* u);
// requantize_run(u.r, acc, 0, n, o), the short loop with its constants in registers.
void requantize_uniform(const UniformRequant& u, const int32_t* acc, int32_t n, int8_t* o);

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS::dsp
