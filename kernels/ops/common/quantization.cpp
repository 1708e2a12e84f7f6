#include "tinyfleet/kernels/ops/quantization.h"

#include <cmath>

namespace tinyfleet::kernels {

const char* to_string(Status status) {
  switch (status) {
    case Status::kOk:
      return "ok";
    case Status::kBadShape:
      return "inconsistent shapes";
    case Status::kBadParams:
      return "unsupported parameters";
    case Status::kScratchTooSmall:
      return "scratch buffer too small";
  }
  return "unknown";
}

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

int8_t quantize_value(float real, const TensorQuant& q) {
  const float scaled = std::round(real / q.scale) + static_cast<float>(q.zero_point);
  if (scaled <= -128.0f) return -128;
  if (scaled >= 127.0f) return 127;
  return static_cast<int8_t>(scaled);
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

}  // namespace tinyfleet::kernels
