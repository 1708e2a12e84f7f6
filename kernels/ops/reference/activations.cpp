// Reference Softmax (table of exponentials, exact integer division) and the
// table-lookup activations.
#include "tinyfleet/kernels/ops/activations.h"

#include <cmath>
#include <cstdint>

#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels {

void build_softmax_table(float input_scale, float beta, uint32_t table[256]) {
  for (int d = 0; d < 256; ++d) {
    table[d] = static_cast<uint32_t>(
        std::lround(std::exp(-static_cast<double>(beta) * input_scale * d) * 65536.0));
  }
}

namespace {

// gemmlowp's fixed point on raw int32 values (fixedpoint.h), as TFLM uses it.
int32_t saturating_shift_left(int32_t x, int exponent) {
  const int64_t r = static_cast<int64_t>(x) * (int64_t{1} << exponent);
  if (r > INT32_MAX) return INT32_MAX;
  if (r < INT32_MIN) return INT32_MIN;
  return static_cast<int32_t>(r);
}

// exp on [-1/4, 0), Q0.31 in and out.
int32_t exp_on_quarter(int32_t a) {
  const int32_t constant_term = 1895147668, one_third = 715827883;
  const int32_t x = a + (1 << 28);
  const int32_t x2 = saturating_rounding_doubling_high_mul(x, x);
  const int32_t x3 = saturating_rounding_doubling_high_mul(x2, x);
  const int32_t x4 = saturating_rounding_doubling_high_mul(x2, x2);
  const int32_t poly = rounding_divide_by_pot(
      saturating_rounding_doubling_high_mul(rounding_divide_by_pot(x4, 2) + x3, one_third) + x2, 1);
  return constant_term + saturating_rounding_doubling_high_mul(constant_term, x + poly);
}

// exp_on_negative_values: Q5.26 in, Q0.31 out.
int32_t exp_on_negative_values(int32_t a) {
  const int32_t quarter = 1 << 24, mask = quarter - 1;
  const int32_t a_mod = (a & mask) - quarter;
  int32_t result = exp_on_quarter(saturating_shift_left(a_mod, 5));
  const int32_t remainder = a_mod - a;
  static const int32_t kMultipliers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                          39332535,   720401,     242};
  for (int e = -2; e <= 4; ++e) {
    if (remainder & (1 << (26 + e))) {
      result = saturating_rounding_doubling_high_mul(result, kMultipliers[e + 2]);
    }
  }
  return a == 0 ? INT32_MAX : result;
}

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

void build_softmax_tflm_table(float input_scale, float beta, uint32_t table[256]) {
  // TFLM's Prepare: PreprocessSoftmaxScaling with 5 integer bits, CalculateInputRadius.
  const double real = std::fmin(static_cast<double>(beta) * input_scale * (1 << 26),
                                static_cast<double>((int64_t{1} << 31) - 1));
  int32_t multiplier = 0;
  int left_shift = 0;
  quantize_multiplier(real, &multiplier, &left_shift);
  if (left_shift < 0) left_shift = 0;  // TFLM asserts a multiplier above one
  const double radius =
      31.0 * static_cast<double>(int64_t{1} << 26) / static_cast<double>(int64_t{1} << left_shift);
  const int32_t diff_min = -static_cast<int32_t>(std::floor(radius));
  for (int d = 0; d < 256; ++d) {
    if (-d < diff_min) {
      table[d] = 0;
      continue;
    }
    const int32_t rescaled = saturating_rounding_doubling_high_mul(
        static_cast<int32_t>(-d * (int64_t{1} << left_shift)), multiplier);
    table[d] = static_cast<uint32_t>(exp_on_negative_values(rescaled));
  }
}

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
