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
  kConcatenation = 2,
  kConv2D = 3,
  kDepthwiseConv2D = 4,
  kDequantize = 6,
  kFullyConnected = 9,
  kLogistic = 14,
  kMaxPool2D = 17,
  kMul = 18,
  kRelu = 19,
  kRelu6 = 21,
  kReshape = 22,
  kSoftmax = 25,
  kTanh = 28,
  kPad = 34,
  kTranspose = 39,
  kMean = 40,
  kSqueeze = 43,
  kStridedSlice = 45,
  kPadV2 = 60,
  kQuantize = 114,
  kHardSwish = 117,
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

// A TFLite axis (negative counts from the end) of a rank-`rank` tensor as its position
// in dims_of's NHWC; -1 when out of range.
inline int32_t axis_nhwc(int32_t axis, size_t rank) {
  const auto r = static_cast<int32_t>(rank);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r || rank == 0) return -1;
  switch (rank) {
    case 4:
      return axis;
    case 3:
      return axis == 0 ? 0 : axis + 1;
    case 2:
      return axis == 0 ? 0 : 3;
    default:
      return 3;
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
