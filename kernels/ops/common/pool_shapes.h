#pragma once

// Shape checks shared by the reference and optimized pooling kernels.
#include "conv_shapes.h"
#include "tinyfleet/kernels/ops/pooling.h"

namespace tinyfleet::kernels::detail {

// Window, strides, extents and an activation range inside int8.
bool pool_shapes_ok(const PoolParams& p, const Dims& in, const Dims& out);

// TFLite's average: sum / count rounded half away from zero (0 for an empty window).
inline int32_t rounded_average(int32_t sum, int32_t count) {
  return count > 0 ? (sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count) : 0;
}

}  // namespace tinyfleet::kernels::detail
