#pragma once

// Add and Mul on Arm cores with the DSP extension (elementwise_dsp.cpp): TFLite's
// integer arithmetic, bit for bit; Add through two 256-entry tables, Mul four elements a
// word (SXTAB16, SMULBB/SMULTT); both through the shared requantization.
#include <cstdint>

#include "tinyfleet/kernels/ops/elementwise.h"

#ifndef TINYFLEET_OPT_NS
#define TINYFLEET_OPT_NS opt
#endif

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

// Runs the Add and returns true, or returns false without touching the output when this
// build has no Arm DSP or the tensor is too small for the tables to pay (under 256
// elements). Arguments as opt::add's, already checked. Element i is read before it is
// written (the output may sit on an input).
bool add_dsp(const AddParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
             int8_t* out);
// The same for Mul (any size; false only without Arm DSP or with a negative multiplier).
bool mul_dsp(const MulParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
             int8_t* out);

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
