#pragma once

// Constant operands and shape rules the TFLite importer's int8 and float paths share:
// MEAN's axes, PAD's and PADV2's paddings, CONCATENATION's axis.
#include <cstdint>
#include <vector>

#include "tinyfleet/optimizer_service/tflite_import.h"

namespace tinyfleet::optimizer_service::tflite_operands {

// Input `k` of `o` as constant int32 values; an error naming `what` otherwise.
Result<std::vector<int32_t>> int32_operand(const TfliteModel& m, const TfliteOperator& o, size_t k,
                                           const char* what);

// MEAN's axes reduce exactly height and width (dimensions of extent 1 may be named or
// not) and the output is [N, 1, 1, C]; the refusal says what is supported.
Result<bool> check_mean_over_hw(const TfliteModel& m, const TfliteOperator& o);

// PAD/PADV2's paddings ([rank, 2], each 0..4096) as NHWC amounts, checked against the
// output's shape.
Result<bool> paddings_nhwc(const TfliteModel& m, const TfliteOperator& o, int32_t before[4],
                           int32_t after[4]);

// CONCATENATION's axis as NHWC, after checking options, no fused activation, at most 16
// inputs of the output's rank, and the element count.
Result<int32_t> concatenation_axis(const TfliteModel& m, const TfliteOperator& o);

}  // namespace tinyfleet::optimizer_service::tflite_operands
