// What the compiler precomputes for the device (docs/kernels.md, "Artifact"):
// requantization multipliers, Add/Mul/Mean parameters, fused-activation ranges and the
// 256-entry tables of Softmax (both modes), Logistic and Tanh. Host side: the device
// runtime never calls these, so the Cortex-M runtime library leaves this file out (its
// self-test and bench apps link it).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/pooling.h"
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels {

void quantize_multiplier(double real, int32_t* multiplier, int* shift) {
  if (real == 0.0) {
    *multiplier = 0;
    *shift = 0;
    return;
  }
  const double q = std::frexp(real, shift);
  auto q_fixed = static_cast<int64_t>(std::round(q * static_cast<double>(int64_t{1} << 31)));
  if (q_fixed == (int64_t{1} << 31)) {
    q_fixed /= 2;
    ++*shift;
  }
  if (*shift < -31) {  // too small to represent: flush to zero
    *shift = 0;
    q_fixed = 0;
  }
  if (*shift > 30) {  // saturate, as TFLite does
    *shift = 30;
    q_fixed = (int64_t{1} << 31) - 1;
  }
  *multiplier = static_cast<int32_t>(q_fixed);
}

ActivationRange activation_range(FusedActivation act, const TensorQuant& output) {
  ActivationRange r;
  auto q = [&](float v) {
    const float s = std::round(v / output.scale) + static_cast<float>(output.zero_point);
    return static_cast<int32_t>(s < -128.0f ? -128.0f : (s > 127.0f ? 127.0f : s));
  };
  if (act == FusedActivation::kRelu || act == FusedActivation::kRelu6) r.min = q(0.0f);
  if (act == FusedActivation::kRelu6) r.max = q(6.0f);
  return r;
}

FloatRange float_activation_range(FusedActivation act) {
  FloatRange r;
  if (act == FusedActivation::kRelu || act == FusedActivation::kRelu6) r.min = 0.0f;
  if (act == FusedActivation::kRelu6) r.max = 6.0f;
  return r;
}

namespace {
template <class F>
void build_table(const TensorQuant& in, const TensorQuant& out, int8_t table[256], F f) {
  for (int i = -128; i <= 127; ++i) {
    const float x = in.scale * static_cast<float>(i - in.zero_point);
    table[i + 128] = quantize_value(f(x), out);
  }
}
}  // namespace

void build_logistic_table(const TensorQuant& input, const TensorQuant& output, int8_t table[256]) {
  build_table(input, output, table, [](float x) { return 1.0f / (1.0f + std::exp(-x)); });
}

void build_tanh_table(const TensorQuant& input, const TensorQuant& output, int8_t table[256]) {
  build_table(input, output, table, [](float x) { return std::tanh(x); });
}

AddParams make_add_params(const TensorQuant& in1, const TensorQuant& in2, const TensorQuant& out,
                          ActivationRange activation) {
  AddParams p;
  p.input1_offset = -in1.zero_point;
  p.input2_offset = -in2.zero_point;
  p.output_offset = out.zero_point;
  const double twice_max = 2.0 * std::max(in1.scale, in2.scale);
  int s = 0;
  quantize_multiplier(in1.scale / twice_max, &p.input1_multiplier, &s);
  p.input1_shift = s;
  quantize_multiplier(in2.scale / twice_max, &p.input2_multiplier, &s);
  p.input2_shift = s;
  quantize_multiplier(twice_max / ((1 << p.left_shift) * static_cast<double>(out.scale)),
                      &p.output_multiplier, &s);
  p.output_shift = s;
  p.activation = activation;
  return p;
}

MulParams make_mul_params(const TensorQuant& in1, const TensorQuant& in2, const TensorQuant& out,
                          ActivationRange activation) {
  MulParams p;
  p.input1_offset = -in1.zero_point;
  p.input2_offset = -in2.zero_point;
  p.output_offset = out.zero_point;
  int s = 0;
  quantize_multiplier(static_cast<double>(in1.scale) * in2.scale / out.scale, &p.output_multiplier,
                      &s);
  p.output_shift = s;
  p.activation = activation;
  return p;
}

MeanParams make_mean_params(const TensorQuant& in, const TensorQuant& out, int32_t count) {
  MeanParams p;
  p.input_offset = -in.zero_point;
  p.output_offset = out.zero_point;
  int s = 0;
  quantize_multiplier(static_cast<double>(in.scale) / (static_cast<double>(out.scale) * count),
                      &p.multiplier, &s);
  p.shift = s;
  return p;
}

void build_softmax_table(float input_scale, float beta, uint32_t table[256]) {
  for (int d = 0; d < 256; ++d) {
    table[d] = static_cast<uint32_t>(
        std::lround(std::exp(-static_cast<double>(beta) * input_scale * d) * 65536.0));
  }
}

namespace {

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

}  // namespace tinyfleet::kernels
