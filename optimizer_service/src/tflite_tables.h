#pragma once

// TFLite's int8 element-wise activations as 256-entry tables (index: input + 128), each
// entry computed with the integer arithmetic of TensorFlow Lite Micro's reference kernel
// and the parameters its Prepare derives, so a table lookup gives TFLM's bytes:
// LOGISTIC and TANH (gemmlowp's fixed-point logistic / tanh on a Q4.27 input), RELU
// (requantized, clamped at the output's zero), RELU6 (clamped in the input's units) and
// HARD_SWISH (TFLM's int16 fixed-point path). Each returns an error naming what TFLM's
// Prepare would refuse.
#include <cstdint>
#include <string>

#include "tinyfleet/kernels/ops/types.h"
#include "tinyfleet/optimizer_service/result.h"

namespace tinyfleet::optimizer_service::tflite_tables {

// `code` is the TFLite builtin code (LOGISTIC, TANH, RELU, RELU6, HARD_SWISH).
Result<bool> build(int32_t code, const kernels::TensorQuant& input,
                   const kernels::TensorQuant& output, int8_t table[256]);

}  // namespace tinyfleet::optimizer_service::tflite_tables
