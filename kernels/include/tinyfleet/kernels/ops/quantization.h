#pragma once

// Fixed-point arithmetic with TensorFlow Lite's exact rounding (gemmlowp), so int8
// results match TFLite bit for bit; and the host-side helpers a compiler uses to
// derive the integer parameters.
#include <cstdint>
#include <limits>

#include "tinyfleet/kernels/ops/types.h"

namespace tinyfleet::kernels {

// gemmlowp's SaturatingShiftLeft on a raw int32 (fixedpoint.h), as TFLM uses it.
inline int32_t saturating_shift_left(int32_t x, int exponent) {
  const int64_t r = static_cast<int64_t>(x) * (int64_t{1} << exponent);
  if (r > INT32_MAX) return INT32_MAX;
  if (r < INT32_MIN) return INT32_MIN;
  return static_cast<int32_t>(r);
}

// (a * b * 2) >> 31 with rounding to nearest and saturation of INT32_MIN * INT32_MIN.
inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == std::numeric_limits<int32_t>::min()) {
    return std::numeric_limits<int32_t>::max();
  }
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));
}

// x / 2^exponent, rounding half away from zero.
inline int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + ((x < 0) ? 1 : 0);
  return (x >> exponent) + ((remainder > threshold) ? 1 : 0);
}

// TFLite's MultiplyByQuantizedMultiplier: x * multiplier * 2^(shift - 31), rounded.
inline int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(
                                    static_cast<int32_t>(x * (int64_t{1} << left)), multiplier),
                                right);
}

// TFLite's QuantizeMultiplier: real = multiplier * 2^(shift - 31), multiplier in
// [2^30, 2^31) (or 0 for real == 0).
void quantize_multiplier(double real, int32_t* multiplier, int* shift);

// The clamp of a fused activation in the output's quantization. kind: 0 none, 1 ReLU,
// 2 ReLU6.
enum class FusedActivation : uint8_t { kNone = 0, kRelu = 1, kRelu6 = 2 };
ActivationRange activation_range(FusedActivation act, const TensorQuant& output);
FloatRange float_activation_range(FusedActivation act);

int8_t quantize_value(float real, const TensorQuant& q);
inline float dequantize_value(int8_t v, const TensorQuant& q) {
  return q.scale * static_cast<float>(static_cast<int32_t>(v) - q.zero_point);
}

// 256-entry lookup tables for Logistic and Tanh (index: input + 128), built from the
// input and output quantization; the kernels only look up.
void build_logistic_table(const TensorQuant& input, const TensorQuant& output, int8_t table[256]);
void build_tanh_table(const TensorQuant& input, const TensorQuant& output, int8_t table[256]);

}  // namespace tinyfleet::kernels
