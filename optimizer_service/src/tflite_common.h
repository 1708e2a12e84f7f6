#pragma once

// What the TFLite importer's int8 and float paths share: TFLite's operator codes, its
// shapes as NHWC dims, and TFLM's padding rule.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "tinyfleet/kernels/ops/types.h"

namespace tinyfleet::optimizer_service::tflite_common {

// TFLite's codes (schema.fbs) for the operators the importer maps.
enum : int32_t {
  kAdd = 0,
  kAveragePool2D = 1,
  kConv2D = 3,
  kDepthwiseConv2D = 4,
  kDequantize = 6,
  kFullyConnected = 9,
  kMaxPool2D = 17,
  kMul = 18,
  kReshape = 22,
  kSoftmax = 25,
  kQuantize = 114,
};

// Rank 4 is NHWC; rank 3 [N, W, C]; rank 2 [N, C]; rank 1 [C]; rank 0 one value.
inline kernels::Dims dims_of(const std::vector<int32_t>& s) {
  switch (s.size()) {
    case 4:
      return {s[0], s[1], s[2], s[3]};
    case 3:
      return {s[0], 1, s[1], s[2]};
    case 2:
      return {s[0], 1, 1, s[1]};
    case 1:
      return {1, 1, 1, s[0]};
    default:
      return {1, 1, 1, 1};
  }
}

// TFLM's ComputePaddingHeightWidth for one dimension (padding 0: SAME, 1: VALID); false
// when the model's output extent is not what the padding gives.
inline bool padding_for(int padding, int32_t in, int32_t filter, int32_t stride, int32_t dilation,
                        int32_t out, int32_t* before, int32_t* after) {
  const int32_t effective = (filter - 1) * dilation + 1;
  const int32_t want =
      padding == 0 ? (in + stride - 1) / stride : (in - effective + stride) / stride;
  if (want != out || want < 1) return false;
  const int32_t total = std::max(0, (out - 1) * stride + effective - in);
  *before = padding == 0 ? total / 2 : 0;
  *after = padding == 0 ? total - total / 2 : 0;
  return true;
}

}  // namespace tinyfleet::optimizer_service::tflite_common
