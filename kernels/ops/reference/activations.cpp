// Reference Softmax (table of exponentials, exact integer division) and the
// table-lookup activations.
#include "tinyfleet/kernels/ops/activations.h"

#include <cmath>
#include <cstdint>

#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels {

namespace {

// one_over_one_plus_x_for_x_in_0_1, Q0.31 in and out (Newton-Raphson in Q2.29).
int32_t one_over_one_plus_x(int32_t a) {
  const int64_t sum = static_cast<int64_t>(a) + INT32_MAX;
  const auto half = static_cast<int32_t>((sum + (sum >= 0 ? 1 : -1)) / 2);
  int32_t x = 1515870810 + saturating_rounding_doubling_high_mul(half, -1010580540);
  for (int i = 0; i < 3; ++i) {
    const int32_t one_minus = (1 << 29) - saturating_rounding_doubling_high_mul(half, x);
    x = x + saturating_shift_left(saturating_rounding_doubling_high_mul(x, one_minus), 2);
  }
  return saturating_shift_left(x, 1);
}

}  // namespace

Status quantize(const TensorQuant& q, int64_t size, const float* input, int8_t* output) {
  if (size < 0 || q.scale <= 0) return Status::kBadParams;
  for (int64_t i = 0; i < size; ++i) output[i] = quantize_value(input[i], q);
  return Status::kOk;
}

Status dequantize(const TensorQuant& q, int64_t size, const int8_t* input, float* output) {
  if (size < 0) return Status::kBadParams;
  for (int64_t i = 0; i < size; ++i) output[i] = dequantize_value(input[i], q);
  return Status::kOk;
}

namespace ref {

Status softmax(const uint32_t table[256], int32_t rows, int32_t depth, const int8_t* input,
               int8_t* output) {
  if (rows <= 0 || depth <= 0 || depth > 32768) return Status::kBadShape;
  for (int32_t r = 0; r < rows; ++r) {
    const int8_t* x = input + static_cast<int64_t>(r) * depth;
    int8_t* y = output + static_cast<int64_t>(r) * depth;
    int32_t max = -128;
    for (int32_t i = 0; i < depth; ++i) max = x[i] > max ? x[i] : max;
    uint64_t sum = 0;
    for (int32_t i = 0; i < depth; ++i) sum += table[max - x[i]];
    if (sum == 0) return Status::kBadParams;  // a table without exp(0) > 0 is not a softmax table
    for (int32_t i = 0; i < depth; ++i) {
      // round(e_i / sum * 256) - 128, in integers.
      const uint64_t q = (uint64_t{table[max - x[i]]} * 256 + sum / 2) / sum;
      const int32_t v = static_cast<int32_t>(q) - 128;
      y[i] = static_cast<int8_t>(v > 127 ? 127 : v);
    }
  }
  return Status::kOk;
}

Status softmax_tflm(const uint32_t table[256], int32_t rows, int32_t depth, const int8_t* input,
                    int8_t* output) {
  if (rows <= 0 || depth <= 0 || depth > 256) return Status::kBadShape;
  if (table[0] != INT32_MAX) return Status::kBadParams;  // exp(0) is one
  for (int32_t r = 0; r < rows; ++r) {
    const int8_t* x = input + static_cast<int64_t>(r) * depth;
    int8_t* y = output + static_cast<int64_t>(r) * depth;
    int32_t max = -128;
    for (int32_t i = 0; i < depth; ++i) max = x[i] > max ? x[i] : max;
    int32_t sum = 0;  // Q12.19: 2^19 (the maximum's exp) to 2^27, so the shifts below stay <= 31
    for (int32_t i = 0; i < depth; ++i) {
      sum += rounding_divide_by_pot(static_cast<int32_t>(table[max - x[i]] & INT32_MAX), 12);
    }
    int headroom = 0;  // leading zeros; sum >= 2^19 (the maximum's own exp)
    while (!(static_cast<uint32_t>(sum) & (0x80000000u >> headroom))) ++headroom;
    const int bits_over_unit = 12 - headroom;
    const int32_t scale = one_over_one_plus_x(
        static_cast<int32_t>((static_cast<uint32_t>(sum) << headroom) - 0x80000000u));
    for (int32_t i = 0; i < depth; ++i) {
      const auto e = static_cast<int32_t>(table[max - x[i]] & INT32_MAX);
      const int32_t v = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scale, e),
                                               bits_over_unit + 23) -
                        128;
      y[i] = static_cast<int8_t>(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
  }
  return Status::kOk;
}

Status lookup(const int8_t table[256], int64_t size, const int8_t* input, int8_t* output) {
  if (size < 0) return Status::kBadShape;
  for (int64_t i = 0; i < size; ++i) output[i] = table[input[i] + 128];
  return Status::kOk;
}

}  // namespace ref
}  // namespace tinyfleet::kernels
