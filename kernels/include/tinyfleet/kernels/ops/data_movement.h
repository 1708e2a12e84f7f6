#pragma once

// Concatenation and Pad (bytes moved, no arithmetic: opt:: is ref::), and Reshape,
// which is not a kernel at all: the runtime aliases the output to the input's
// memory, so it costs nothing and allocates nothing.
#include "tinyfleet/kernels/ops/types.h"

namespace tinyfleet::kernels {

// Concatenates `count` tensors along `axis` (0..3 of NHWC). All share one quantization
// (the compiler guarantees it), so this is a copy of any element size.
Status concatenation(int32_t axis, int32_t count, const Dims* input_dims, const void* const* inputs,
                     size_t element_size, const Dims& output_dims, void* output);

// Pads NHWC with `value` (an int8 zero point, or 0.0f for float via element_size 4).
struct PadParams {
  int32_t before[4] = {0, 0, 0, 0};
  int32_t after[4] = {0, 0, 0, 0};
};
Status pad(const PadParams& p, const Dims& in, const void* input, size_t element_size,
           const void* value, const Dims& out, void* output);

}  // namespace tinyfleet::kernels
