#pragma once

// When an operator may write its output over its own input: the contract between the
// kernels and the compiler's memory planner.
//
// Window kernels (Conv2D, DepthwiseConv2D, AveragePool2D, MaxPool2D; reference and
// optimized, on every target) are pixel-sequential: they write output pixels in raster
// order (row by row, left to right within a row; a block of pixels of one row may be
// computed together), and computing pixel (r, c) reads input rows from
// lo(r) = max(0, r * stride_h - pad_top) and, in row lo(r), columns from
// lo_c(c) = max(0, c * stride_w - pad_left) on; both never decrease. So the lowest input
// byte still to be read once pixel (r, c) is written is input pixel
// min(lo(r) * W + lo_c(c), lo(r + 1) * W). If the output starts D bytes before the input
// and every output pixel ends at or before that byte, nothing still needed has been
// overwritten. `overlap_distance` is the smallest such D; any larger D (or no overlap)
// is also safe. Batch 1 only.
//
// Element-wise kernels (Add, Mul, Logistic, Tanh) read element i before writing
// element i, so the output may sit exactly on an input of the same shape and type
// (distance 0).
//
// A kernel that blocks pixels across output rows or loops channels outermost would
// break this; tests/kernels/ops/in_place_test.cpp runs every kernel on overlapped buffers.
#include <cstddef>
#include <cstdint>

#include "tinyfleet/kernels/ops/types.h"

namespace tinyfleet::kernels {

struct WindowGeometry {
  int32_t stride_h = 1, stride_w = 1;
  int32_t pad_top = 0, pad_left = 0;
};

// Bytes the output must start before the input (>= 0) for a window operator, or -1 if
// the shapes are not batch 1.
int64_t overlap_distance(const Dims& input, const Dims& output, const WindowGeometry& window,
                         size_t element_size);

}  // namespace tinyfleet::kernels
