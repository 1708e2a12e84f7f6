// Reference Add and Mul (TFLite's integer arithmetic).
#include "tinyfleet/kernels/ops/elementwise.h"

#include <algorithm>
#include <cmath>

#include "../common/conv_shapes.h"
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels {

namespace {
int32_t clamp(int32_t v, const ActivationRange& r) { return std::min(std::max(v, r.min), r.max); }
}  // namespace

namespace ref {

Status add(const AddParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out) {
  if (size <= 0 || (size2 != size && size2 != 1) || !detail::activation_ok(p.activation)) {
    return Status::kBadShape;
  }
  for (int64_t i = 0; i < size; ++i) {
    const int32_t a = (in1[i] + p.input1_offset) * (1 << p.left_shift);
    const int32_t b = (in2[size2 == 1 ? 0 : i] + p.input2_offset) * (1 << p.left_shift);
    const int32_t sa = multiply_by_quantized_multiplier(a, p.input1_multiplier, p.input1_shift);
    const int32_t sb = multiply_by_quantized_multiplier(b, p.input2_multiplier, p.input2_shift);
    const int32_t sum =
        multiply_by_quantized_multiplier(sa + sb, p.output_multiplier, p.output_shift) +
        p.output_offset;
    out[i] = static_cast<int8_t>(clamp(sum, p.activation));
  }
  return Status::kOk;
}

Status mul(const MulParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out) {
  if (size <= 0 || (size2 != size && size2 != 1) || !detail::activation_ok(p.activation)) {
    return Status::kBadShape;
  }
  for (int64_t i = 0; i < size; ++i) {
    const int32_t a = in1[i] + p.input1_offset;
    const int32_t b = in2[size2 == 1 ? 0 : i] + p.input2_offset;
    const int32_t v = multiply_by_quantized_multiplier(a * b, p.output_multiplier, p.output_shift) +
                      p.output_offset;
    out[i] = static_cast<int8_t>(clamp(v, p.activation));
  }
  return Status::kOk;
}

}  // namespace ref
}  // namespace tinyfleet::kernels
