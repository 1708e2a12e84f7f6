// TFLM's int8 LOGISTIC, TANH, RELU, RELU6 and HARD_SWISH as lookup tables
// (tflite_tables.h). The fixed-point helpers follow gemmlowp's fixedpoint.h on raw int32
// values; the integer bits of each value are noted where they matter.
#include "tflite_tables.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tflite_common.h"
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::optimizer_service::tflite_tables {

namespace {

namespace k = tinyfleet::kernels;
using namespace tflite_common;

constexpr int32_t kMax32 = std::numeric_limits<int32_t>::max();

int32_t mul(int32_t a, int32_t b) { return k::saturating_rounding_doubling_high_mul(a, b); }

// SaturatingRoundingMultiplyByPOT with a positive exponent (a saturating left shift).
int32_t shl_sat(int32_t x, int e) {
  const int64_t r = int64_t{x} * (int64_t{1} << e);
  return static_cast<int32_t>(std::clamp<int64_t>(r, std::numeric_limits<int32_t>::min(), kMax32));
}

// exp(x) for x in [-1/4, 0), Q0.31 in and out.
int32_t exp_quarter(int32_t a) {
  const int32_t constant_term = 1895147668, one_third = 715827883;
  const int32_t x = a + (1 << 28);
  const int32_t x2 = mul(x, x), x3 = mul(x2, x), x4 = mul(x2, x2);
  const int32_t x4_over_4 = k::rounding_divide_by_pot(x4, 2);
  const int32_t poly = k::rounding_divide_by_pot(mul(x4_over_4 + x3, one_third) + x2, 1);
  return constant_term + mul(constant_term, x + poly);
}

// exp(a) for a <= 0 with `ib` integer bits (4 or 5 here); Q0.31 result.
int32_t exp_negative(int32_t a, int ib) {
  const int fb = 31 - ib;
  const int32_t quarter = 1 << (fb - 2);
  const int32_t a_mod = (a & (quarter - 1)) - quarter;
  int32_t result = exp_quarter(shl_sat(a_mod, ib));
  const int32_t remainder = a_mod - a;
  const int32_t multipliers[] = {1672461947, 1302514674, 790015084, 290630308,
                                 39332535,   720401,     242};
  for (int e = -2; e <= 4; ++e) {
    if (ib > e && (remainder & (1 << (fb + e))) != 0) result = mul(result, multipliers[e + 2]);
  }
  return a == 0 ? kMax32 : result;
}

// Newton-Raphson reciprocal of (1 + a) / 2 with a in (0, 1) Q0.31; result Q2.29.
int32_t half_reciprocal(int32_t a) {
  const int64_t sum = int64_t{a} + kMax32;
  const auto half_den = static_cast<int32_t>((sum + (sum >= 0 ? 1 : -1)) / 2);
  int32_t x = 1515870810 + mul(half_den, -1010580540);
  for (int i = 0; i < 3; ++i) {
    const int32_t one_minus = (1 << 29) - mul(half_den, x);
    x = x + shl_sat(mul(x, one_minus), 2);
  }
  return x;
}

int32_t logistic_q0(int32_t a) {  // a: Q4.27
  if (a == 0) return 1 << 30;
  const int32_t abs_a = a > 0 ? a : -a;
  const int32_t positive = shl_sat(half_reciprocal(exp_negative(-abs_a, 4)), 1);
  return a > 0 ? positive : kMax32 - positive;
}

int32_t tanh_q0(int32_t a) {  // a: Q4.27
  if (a == 0) return 0;
  const int32_t n = a < 0 ? a : -a;
  const int32_t t = shl_sat(half_reciprocal(exp_negative(n, 5)) - (1 << 29), 2);
  return a < 0 ? -t : t;
}

// LOGISTIC (output zero point -128) and TANH (0): Prepare's multiplier for the Q4.27
// input, its radius, and Eval's rounding to 8 (logistic) or 7 (tanh) fractional bits.
Result<bool> sigmoid_like(int32_t code, const k::TensorQuant& in, const k::TensorQuant& out,
                          int8_t table[256]) {
  const bool logistic = code == kLogistic;
  if (out.zero_point != (logistic ? -128 : 0)) {
    return CompileError{std::string("output zero point must be ") + (logistic ? "-128" : "0") +
                        " (TFLite's)"};
  }
  int shift = 0;
  const double q = std::frexp(static_cast<double>(in.scale) * (1 << 27), &shift);
  const auto qf = static_cast<int64_t>(std::round(q * (1LL << 31)));
  if (shift < 0 || shift > 30 || qf >= (int64_t{1} << 31)) {
    return CompileError{"input scale " + std::to_string(in.scale) + " out of range"};
  }
  const auto multiplier = static_cast<int32_t>(qf);
  const auto radius =
      static_cast<int32_t>(std::floor(15.0 * (1LL << 27) / static_cast<double>(1LL << shift)));
  for (int v = -128; v < 128; ++v) {
    const int32_t x = v - in.zero_point;
    int32_t r = 0;
    if (x <= -radius) {
      r = -128;
    } else if (x >= radius) {
      r = 127;
    } else {
      const int32_t q4 = k::multiply_by_quantized_multiplier(x, multiplier, shift);
      r = logistic ? k::rounding_divide_by_pot(logistic_q0(q4), 23) - 128
                   : k::rounding_divide_by_pot(tanh_q0(q4), 24);
    }
    table[v + 128] = static_cast<int8_t>(std::clamp(r, -128, 127));
  }
  return true;
}

int16_t srdhm16(int16_t a, int16_t b) {
  if (a == b && a == std::numeric_limits<int16_t>::min()) return 32767;
  const int32_t ab = int32_t{a} * b;
  const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
  return static_cast<int16_t>((ab + nudge) / (1 << 15));
}
int16_t sdhm16(int16_t a, int16_t b) {  // truncating, as TFLM's SaturatingDoublingHighMul
  if (a == b && a == std::numeric_limits<int16_t>::min()) return 32767;
  return static_cast<int16_t>((int32_t{a} * b) / (1 << 15));
}
int16_t shl16(int16_t v, int amount) {
  return static_cast<int16_t>(std::clamp<int32_t>(v * (1 << amount), -32768, 32767));
}
int16_t to_int16_multiplier(int32_t m) {  // DownScaleInt32ToInt16Multiplier
  if (m >= kMax32 - (1 << 15)) return 32767;
  return static_cast<int16_t>((m + (1 << 15)) >> 16);
}

// HARD_SWISH: TFLM's Prepare (scales in float, as it computes them) and int16 Eval.
Result<bool> hard_swish(const k::TensorQuant& in, const k::TensorQuant& out, int8_t table[256]) {
  const float hires_input_scale = (1.0f / 128.0f) * in.scale;
  const float reluish_scale = 3.0f / 32768.0f;
  int32_t om32 = 0, rm32 = 0;
  int out_exp = 0, relu_exp = 0;
  k::quantize_multiplier(static_cast<double>(hires_input_scale / out.scale), &om32, &out_exp);
  k::quantize_multiplier(static_cast<double>(hires_input_scale / reluish_scale), &rm32, &relu_exp);
  if (out_exp > 0) return CompileError{"input scale / output scale is 128 or more"};
  if (relu_exp > 15 || relu_exp < -15) return CompileError{"input scale out of range"};
  const int16_t om = to_int16_multiplier(om32), rm = to_int16_multiplier(rm32);
  for (int v = -128; v < 128; ++v) {
    const auto x = static_cast<int16_t>(v - in.zero_point);
    const auto hires = static_cast<int16_t>(x * (1 << 7));
    const int16_t preshift_out = srdhm16(hires, om);
    int16_t reluish = hires;
    if (relu_exp > 0) reluish = shl16(reluish, relu_exp - 1);
    reluish = srdhm16(reluish, rm);
    if (relu_exp > 0) reluish = shl16(reluish, 1);
    if (relu_exp < 0) reluish = static_cast<int16_t>(k::rounding_divide_by_pot(reluish, -relu_exp));
    reluish = static_cast<int16_t>((reluish + (1 << 15)) >> 1);
    const int16_t pre = sdhm16(reluish, preshift_out);
    int32_t y = k::rounding_divide_by_pot(pre, -out_exp) + out.zero_point;
    table[v + 128] =
        static_cast<int8_t>(std::clamp(static_cast<int16_t>(y), int16_t{-128}, int16_t{127}));
  }
  return true;
}

}  // namespace

Result<bool> build(int32_t code, const k::TensorQuant& in, const k::TensorQuant& out,
                   int8_t table[256]) {
  switch (code) {
    case kLogistic:
    case kTanh:
      return sigmoid_like(code, in, out, table);
    case kHardSwish:
      return hard_swish(in, out, table);
    case kRelu: {  // ReluQuantized: requantize, clamp below at the output's zero
      int32_t m = 0;
      int s = 0;
      k::quantize_multiplier(static_cast<double>(in.scale) / static_cast<double>(out.scale), &m,
                             &s);
      if (s > 23) return CompileError{"input scale / output scale is 2^23 or more"};
      const int32_t lo = std::max(-128, out.zero_point);
      for (int v = -128; v < 128; ++v) {
        const int32_t y =
            out.zero_point + k::multiply_by_quantized_multiplier(v - in.zero_point, m, s);
        table[v + 128] = static_cast<int8_t>(std::clamp(y, lo, 127));
      }
      return true;
    }
    case kRelu6: {  // Relu6Quantized: clamp to [zero, six] in the input's units
      if (in != out) return CompileError{"input and output quantization differ"};
      const int32_t six = static_cast<int32_t>(std::round(6.0f / in.scale)) + in.zero_point;
      const int32_t hi = std::clamp(six, -128, 127);
      for (int v = -128; v < 128; ++v) {
        table[v + 128] = static_cast<int8_t>(v > hi ? hi : (v < in.zero_point ? in.zero_point : v));
      }
      return true;
    }
    default:
      return CompileError{"no table for builtin code " + std::to_string(code)};
  }
}

}  // namespace tinyfleet::optimizer_service::tflite_tables
