#pragma once

// Concatenation, Pad and the strided copy of Transpose and StridedSlice (bytes moved, no
// arithmetic: opt:: is ref::), and Reshape, which is not a kernel at all: the runtime aliases the
// output to the input's memory, so it costs nothing and allocates nothing.
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

// Transpose and StridedSlice as one gather: output element i, counted row-major over
// count[0..3], is input element offset + sum(idx[d] * step[d]) (steps in elements, may be
// negative). kBadParams unless every element reached lies in [0, input_elements).
struct StridedCopyParams {
  int32_t offset = 0;
  int32_t count[4] = {1, 1, 1, 1};
  int32_t step[4] = {0, 0, 0, 0};
};
// The first and last input elements a copy reaches (false when a count is not positive).
bool strided_copy_span(const StridedCopyParams& p, int64_t* lowest, int64_t* highest);
Status strided_copy(const StridedCopyParams& p, int64_t input_elements, const void* input,
                    size_t element_size, void* output);

}  // namespace tinyfleet::kernels
