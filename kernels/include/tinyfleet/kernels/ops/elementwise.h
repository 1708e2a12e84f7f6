#pragma once

// Add and Mul of two int8 tensors of the same shape (or a second operand of one
// element, broadcast), TFLite semantics.
#include "tinyfleet/kernels/ops/types.h"

namespace tinyfleet::kernels {

// TFLite's quantized Add: both inputs are rescaled to a common scale with 20 bits of
// headroom, summed, and rescaled to the output.
struct AddParams {
  int32_t input1_offset = 0, input2_offset = 0, output_offset = 0;
  int32_t left_shift = 20;
  int32_t input1_multiplier = 0, input1_shift = 0;
  int32_t input2_multiplier = 0, input2_shift = 0;
  int32_t output_multiplier = 0, output_shift = 0;
  ActivationRange activation;
};
// Derives the integer parameters from the three quantizations (host or Prepare).
AddParams make_add_params(const TensorQuant& in1, const TensorQuant& in2, const TensorQuant& out,
                          ActivationRange activation);

struct MulParams {
  int32_t input1_offset = 0, input2_offset = 0, output_offset = 0;
  int32_t output_multiplier = 0, output_shift = 0;
  ActivationRange activation;
};
MulParams make_mul_params(const TensorQuant& in1, const TensorQuant& in2, const TensorQuant& out,
                          ActivationRange activation);

// size2 is `size` or 1 (broadcast of a single value).
namespace ref {
Status add(const AddParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out);
Status mul(const MulParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out);
}  // namespace ref
namespace opt {
Status add(const AddParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out);
Status mul(const MulParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out);
}  // namespace opt
// The same kernels built without SIMD (tested too).
namespace opt_scalar {
Status add(const AddParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out);
Status mul(const MulParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out);
}  // namespace opt_scalar
namespace ref_float {
Status add(FloatRange activation, int64_t size, const float* in1, int64_t size2, const float* in2,
           float* out);
Status mul(FloatRange activation, int64_t size, const float* in1, int64_t size2, const float* in2,
           float* out);
}  // namespace ref_float

}  // namespace tinyfleet::kernels
