#pragma once

// Shape checks shared by the reference and optimized pooling kernels.
#include "conv_shapes.h"
#include "tinyfleet/kernels/ops/pooling.h"

namespace tinyfleet::kernels::detail {

// Window, strides, extents and an activation range inside int8.
bool pool_shapes_ok(const PoolParams& p, const Dims& in, const Dims& out);

}  // namespace tinyfleet::kernels::detail
