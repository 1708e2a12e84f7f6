#pragma once

// An independent int8 reference of the TFLite operators the importer maps, written
// from TensorFlow Lite Micro's reference kernels (tensorflow/lite/kernels/internal/
// reference/integer_ops/{conv,depthwise_conv,fully_connected,pooling}.h, reference/
// softmax.h, common.h and gemmlowp's fixedpoint.h): int64 arithmetic where TFLM's is
// exact, TFLM's rounding where it rounds. It shares no code with tinyfleet::kernels.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <vector>

#include "tinyfleet/optimizer_service/tflite_import.h"

namespace tflm_reference {

using tinyfleet::optimizer_service::TfliteModel;
using tinyfleet::optimizer_service::TfliteOperator;
using tinyfleet::optimizer_service::TfliteTensor;

inline int32_t srdhm(int32_t a, int32_t b) {  // SaturatingRoundingDoublingHighMul
  if (a == b && a == std::numeric_limits<int32_t>::min())
    return std::numeric_limits<int32_t>::max();
  const int64_t ab = int64_t{a} * int64_t{b};
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : (1 - (int64_t{1} << 30));
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));
}

inline int32_t rdbpot(int32_t x, int e) {  // RoundingDivideByPOT
  const int64_t mask = (int64_t{1} << e) - 1;
  const int64_t rem = int64_t{x} & mask;
  const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return static_cast<int32_t>((int64_t{x} >> e) + (rem > threshold ? 1 : 0));
}

inline int32_t mbqm(int32_t x, int32_t m, int shift) {  // MultiplyByQuantizedMultiplier
  const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  return rdbpot(srdhm(static_cast<int32_t>(int64_t{x} * (int64_t{1} << left)), m), right);
}

inline void quantize_multiplier(double d, int32_t* m, int* shift) {  // QuantizeMultiplier
  if (d == 0.0) {
    *m = 0;
    *shift = 0;
    return;
  }
  const double q = std::frexp(d, shift);
  int64_t q_fixed = static_cast<int64_t>(std::round(q * (1LL << 31)));
  if (q_fixed == (1LL << 31)) {
    q_fixed /= 2;
    ++*shift;
  }
  if (*shift < -31) {
    *shift = 0;
    q_fixed = 0;
  }
  if (*shift > 30) {
    *shift = 30;
    q_fixed = (1LL << 31) - 1;
  }
  *m = static_cast<int32_t>(q_fixed);
}

// gemmlowp's fixed point, raw int32 values; the integer bits are the caller's.
inline int32_t sat_shl(int32_t x, int e) {  // SaturatingRoundingMultiplyByPOT<e>, e > 0
  const int64_t r = int64_t{x} * (int64_t{1} << e);
  return static_cast<int32_t>(std::clamp<int64_t>(r, std::numeric_limits<int32_t>::min(),
                                                  std::numeric_limits<int32_t>::max()));
}

inline int32_t exp_quarter(int32_t a) {  // exp_on_interval_between_negative_one_quarter_and_0_excl
  const int32_t constant_term = 1895147668, one_third = 715827883;
  const int32_t x = a + (1 << 28);
  const int32_t x2 = srdhm(x, x), x3 = srdhm(x2, x), x4 = srdhm(x2, x2);
  const int32_t x4_over_4 = rdbpot(x4, 2);
  const int32_t poly = rdbpot(srdhm(x4_over_4 + x3, one_third) + x2, 1);
  return constant_term + srdhm(constant_term, x + poly);
}

inline int32_t exp_on_negative_values(int32_t a) {  // input Q5.26, result Q0.31
  const int32_t quarter = 1 << 24, mask = quarter - 1;
  const int32_t a_mod = (a & mask) - quarter;
  int32_t result = exp_quarter(sat_shl(a_mod, 5));
  const int32_t remainder = a_mod - a;
  const int32_t multipliers[] = {1672461947, 1302514674, 790015084, 290630308,
                                 39332535,   720401,     242};
  for (int e = -2; e <= 4; ++e) {
    if (remainder & (1 << (26 + e))) result = srdhm(result, multipliers[e + 2]);
  }
  return a == 0 ? std::numeric_limits<int32_t>::max() : result;
}

inline int32_t one_over_one_plus_x(int32_t a) {  // one_over_one_plus_x_for_x_in_0_1, Q0.31
  const int64_t sum = int64_t{a} + std::numeric_limits<int32_t>::max();
  const int32_t half_den = static_cast<int32_t>((sum + (sum >= 0 ? 1 : -1)) / 2);
  int32_t x = 1515870810 + srdhm(half_den, -1010580540);  // Q2.29
  for (int i = 0; i < 3; ++i) {
    const int32_t one_minus = (1 << 29) - srdhm(half_den, x);
    x = x + sat_shl(srdhm(x, one_minus), 2);
  }
  return sat_shl(x, 1);
}

// exp_on_negative_values for any integer bits `ib` of the input (4: logistic, 5: tanh and
// softmax); Q0.31 result.
inline int32_t exp_on_negative_values_ib(int32_t a, int ib) {
  const int fb = 31 - ib;
  const int32_t quarter = 1 << (fb - 2);
  const int32_t a_mod = (a & (quarter - 1)) - quarter;
  int32_t result = exp_quarter(sat_shl(a_mod, ib));
  const int32_t remainder = a_mod - a;
  const int32_t multipliers[] = {1672461947, 1302514674, 790015084, 290630308,
                                 39332535,   720401,     242};
  for (int e = -2; e <= 4; ++e) {
    if (ib > e && (remainder & (1 << (fb + e)))) result = srdhm(result, multipliers[e + 2]);
  }
  return a == 0 ? std::numeric_limits<int32_t>::max() : result;
}

inline int32_t one_minus_x_over_one_plus_x(int32_t a) {  // x in (0, 1), Q0.31
  const int64_t sum = int64_t{a} + std::numeric_limits<int32_t>::max();
  const int32_t half_den = static_cast<int32_t>((sum + (sum >= 0 ? 1 : -1)) / 2);
  int32_t x = 1515870810 + srdhm(half_den, -1010580540);  // Q2.29
  for (int i = 0; i < 3; ++i) {
    const int32_t one_minus = (1 << 29) - srdhm(half_den, x);
    x = x + sat_shl(srdhm(x, one_minus), 2);
  }
  return sat_shl(x - (1 << 29), 2);
}

// reference_integer_ops::Logistic / Tanh on one value, with LogisticPrepare / TanhPrepare.
inline int8_t logistic_or_tanh(bool logistic, float input_scale, int32_t input_zp, int8_t v) {
  int shift = 0;
  const double q = std::frexp(static_cast<double>(input_scale) * (1 << 27), &shift);
  const auto multiplier = static_cast<int32_t>(std::round(q * (1LL << 31)));
  const double radius = 15.0 * (1LL << 27) / static_cast<double>(1LL << shift);
  const int32_t r = static_cast<int32_t>(std::floor(radius));
  const int32_t x = v - input_zp;
  if (x <= -r) return -128;
  if (x >= r) return 127;
  const int32_t q4 = mbqm(x, multiplier, shift);
  int32_t out = 0;
  if (logistic) {
    int32_t l = 1 << 30;
    if (q4 != 0) {
      const int32_t pos = one_over_one_plus_x(exp_on_negative_values_ib(q4 > 0 ? -q4 : q4, 4));
      l = q4 > 0 ? pos : std::numeric_limits<int32_t>::max() - pos;
    }
    out = rdbpot(l, 23) - 128;
  } else {
    int32_t t = 0;
    if (q4 != 0) {
      const int32_t neg =
          one_minus_x_over_one_plus_x(exp_on_negative_values_ib(q4 < 0 ? q4 : -q4, 5));
      t = q4 < 0 ? -neg : neg;
    }
    out = rdbpot(t, 24);
  }
  return static_cast<int8_t>(std::clamp(out, -128, 127));
}

// reference_ops::HardSwish<int8_t> with HardSwishPrepare's parameters.
inline int8_t hard_swish(float in_scale, int32_t in_zp, float out_scale, int32_t out_zp, int8_t v) {
  auto srdhm16 = [](int16_t a, int16_t b) -> int16_t {
    if (a == b && a == -32768) return 32767;
    const int32_t ab = int32_t{a} * int32_t{b};
    return static_cast<int16_t>((ab + (ab >= 0 ? (1 << 14) : (1 - (1 << 14)))) / (1 << 15));
  };
  auto sdhm16 = [](int16_t a, int16_t b) -> int16_t {
    if (a == b && a == -32768) return 32767;
    return static_cast<int16_t>((int32_t{a} * int32_t{b}) / (1 << 15));
  };
  auto sat_left = [](int16_t a, int amount) -> int16_t {
    const int64_t r = static_cast<int64_t>(a) * (1 << amount);
    return static_cast<int16_t>(std::clamp<int64_t>(r, -32768, 32767));
  };
  auto down16 = [](int32_t m) -> int16_t {
    if (m >= std::numeric_limits<int32_t>::max() - (1 << 15)) return 32767;
    return static_cast<int16_t>((m + (1 << 15)) >> 16);
  };
  const float hires = (1.0f / 128.0f) * in_scale;
  int32_t om = 0, rm = 0;
  int oe = 0, re = 0;
  quantize_multiplier(static_cast<double>(hires / out_scale), &om, &oe);
  quantize_multiplier(static_cast<double>(hires / (3.0f / 32768.0f)), &rm, &re);
  const int16_t om16 = down16(om), rm16 = down16(rm);
  const int16_t input_value = static_cast<int16_t>(v - in_zp);
  const int16_t hires_in = static_cast<int16_t>(input_value * (1 << 7));
  const int16_t preshift = srdhm16(hires_in, om16);
  int16_t reluish = hires_in;
  if (re > 0) reluish = sat_left(reluish, re - 1);
  reluish = srdhm16(reluish, rm16);
  if (re > 0) reluish = sat_left(reluish, 1);
  if (re < 0) reluish = static_cast<int16_t>(rdbpot(reluish, -re));
  reluish = static_cast<int16_t>((reluish + (1 << 15)) >> 1);
  const int16_t pre = sdhm16(reluish, preshift);
  int16_t out = static_cast<int16_t>(rdbpot(pre, -oe));
  out = static_cast<int16_t>(out + out_zp);
  return static_cast<int8_t>(std::clamp<int16_t>(out, -128, 127));
}

// Softmax int8 -> int8 (scale 1/256, zero point -128), TFLM's reference with its Prepare.
inline void softmax(float input_scale, float beta, int depth, const int8_t* in, int8_t* out) {
  const int kScaledDiffIntegerBits = 5;
  int32_t multiplier = 0;
  int left_shift = 0;
  const double real = std::min<double>(
      static_cast<double>(beta) * input_scale * (1 << (31 - kScaledDiffIntegerBits)),
      (1LL << 31) - 1.0);
  quantize_multiplier(real, &multiplier, &left_shift);
  const double radius = 1.0 * ((1 << kScaledDiffIntegerBits) - 1) *
                        (1LL << (31 - kScaledDiffIntegerBits)) / (1LL << left_shift);
  const int diff_min = -static_cast<int>(std::floor(radius));
  int32_t max = -128;
  for (int i = 0; i < depth; ++i) max = std::max<int32_t>(max, in[i]);
  auto scaled = [&](int32_t diff) {
    return srdhm(static_cast<int32_t>(int64_t{diff} * (int64_t{1} << left_shift)), multiplier);
  };
  int32_t sum = 0;  // Q12.19
  for (int i = 0; i < depth; ++i) {
    const int32_t diff = in[i] - max;
    if (diff >= diff_min) sum += rdbpot(exp_on_negative_values(scaled(diff)), 12);
  }
  int headroom = 0;
  while (headroom < 32 && !(static_cast<uint32_t>(sum) & (0x80000000u >> headroom))) ++headroom;
  const int num_bits_over_unit = 12 - headroom;
  const int32_t shifted_sum_minus_one =
      static_cast<int32_t>((static_cast<uint32_t>(sum) << headroom) - (1u << 31));
  const int32_t shifted_scale = one_over_one_plus_x(shifted_sum_minus_one);
  for (int i = 0; i < depth; ++i) {
    const int32_t diff = in[i] - max;
    if (diff < diff_min) {
      out[i] = -128;
      continue;
    }
    const int32_t e = exp_on_negative_values(scaled(diff));
    const int32_t v = rdbpot(srdhm(shifted_scale, e), num_bits_over_unit + 31 - 8) - 128;
    out[i] = static_cast<int8_t>(std::clamp(v, -128, 127));
  }
}

inline int32_t quantize(float f, float scale, int32_t zp) {
  return zp + static_cast<int32_t>(std::round(f / scale));
}

struct Range {
  int32_t min = -128, max = 127;
};
inline Range activation(int act, float scale, int32_t zp) {
  Range r;
  if (act == 1 || act == 3) r.min = std::max(-128, quantize(0.0f, scale, zp));
  if (act == 3) r.max = std::min(127, quantize(6.0f, scale, zp));
  if (act == 2) {
    r.min = std::max(-128, quantize(-1.0f, scale, zp));
    r.max = std::min(127, quantize(1.0f, scale, zp));
  }
  return r;
}

// The int8 values of every tensor after running `m` on `input`.
class Runner {
 public:
  explicit Runner(const TfliteModel& m) : m_(m) {}

  std::map<int, std::vector<int8_t>> run(const std::vector<int8_t>& input) const {
    std::map<int, std::vector<int8_t>> v;
    for (size_t i = 0; i < m_.tensors.size(); ++i) {  // int8 constants, by value
      const TfliteTensor& c = m_.tensors[i];
      if (!c.data.empty() && c.type == 9)
        v[static_cast<int>(i)].assign(c.data.begin(), c.data.end());
    }
    v[m_.inputs[0]] = input;
    for (const auto& o : m_.operators) v[o.outputs[0]] = op(o, v);
    return v;
  }

 private:
  const TfliteTensor& t(int i) const { return m_.tensors[static_cast<size_t>(i)]; }
  static std::vector<int32_t> dims4(const std::vector<int32_t>& s) {
    std::vector<int32_t> d(4 - std::min<size_t>(4, s.size()), 1);
    d.insert(d.end(), s.begin(), s.end());
    return d;
  }
  static int32_t pad_before(int padding, int in, int filter, int stride, int dilation, int out) {
    if (padding == 1) return 0;
    const int eff = (filter - 1) * dilation + 1;
    return std::max(0, (out - 1) * stride + eff - in) / 2;
  }

  std::vector<int32_t> ints(int i) const {
    std::vector<int32_t> r(static_cast<size_t>(t(i).elements()));
    std::memcpy(r.data(), t(i).data.data(), r.size() * 4);
    return r;
  }
  static std::vector<int64_t> row_strides(const std::vector<int32_t>& s) {
    std::vector<int64_t> r(s.size(), 1);
    for (size_t i = s.size(); i-- > 1;) r[i - 1] = r[i] * s[i];
    return r;
  }
  // Visits every index of `shape` in row-major order.
  template <class F>
  static void each_index(const std::vector<int32_t>& shape, F f) {
    int64_t n = 1;
    for (int32_t d : shape) n *= d;
    std::vector<int32_t> idx(shape.size(), 0);
    for (int64_t k = 0; k < n; ++k) {
      f(idx);
      for (size_t d = shape.size(); d-- > 0;) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
  }

  // reference_ops::QuantizedMeanOrSum (compute_sum false) with PrepareMeanOrSum.
  std::vector<int8_t> mean(const TfliteOperator& o, const std::vector<int8_t>& x) const {
    const TfliteTensor& xt = t(o.inputs[0]);
    const TfliteTensor& yt = t(o.outputs[0]);
    std::vector<bool> reduced(xt.shape.size(), false);
    for (int32_t a : ints(o.inputs[1]))
      reduced[static_cast<size_t>(a < 0 ? a + static_cast<int32_t>(xt.shape.size()) : a)] = true;
    std::vector<int32_t> out_shape;
    int64_t count = 1;
    for (size_t d = 0; d < xt.shape.size(); ++d) {
      out_shape.push_back(reduced[d] ? 1 : xt.shape[d]);
      if (reduced[d]) count *= xt.shape[d];
    }
    const auto os = row_strides(out_shape);
    std::vector<int64_t> sum(static_cast<size_t>(yt.elements()), 0);
    size_t flat = 0;
    each_index(xt.shape, [&](const std::vector<int32_t>& idx) {
      int64_t o_at = 0;
      for (size_t d = 0; d < idx.size(); ++d) o_at += (reduced[d] ? 0 : idx[d]) * os[d];
      sum[static_cast<size_t>(o_at)] += x[flat++];
    });
    int32_t m = 0;
    int s = 0;
    quantize_multiplier(static_cast<double>(xt.scale[0]) / static_cast<double>(yt.scale[0]), &m,
                        &s);
    int shift = 63;
    while (!((static_cast<uint64_t>(count) >> shift) & 1)) --shift;  // 63 - clz(count)
    shift = std::min(shift, 32);
    shift = std::min(shift, 31 + s);
    m = static_cast<int32_t>((static_cast<int64_t>(m) << shift) / count);
    s -= shift;
    std::vector<int8_t> y(sum.size());
    const auto izp = static_cast<int32_t>(xt.zero_point[0]);
    const auto ozp = static_cast<int32_t>(yt.zero_point[0]);
    for (size_t i = 0; i < y.size(); ++i) {
      const auto shifted = static_cast<int32_t>(sum[i] - int64_t{izp} * count);
      y[i] = static_cast<int8_t>(std::clamp(mbqm(shifted, m, s) + ozp, -128, 127));
    }
    return y;
  }

  // reference_ops::Pad with the output's zero point, or PADV2's constant_values.
  std::vector<int8_t> pad(const TfliteOperator& o, const std::vector<int8_t>& x) const {
    const TfliteTensor& xt = t(o.inputs[0]);
    const TfliteTensor& yt = t(o.outputs[0]);
    const bool v2 = o.code == 60 && o.inputs.size() > 2 && o.inputs[2] >= 0;
    const auto value = static_cast<int8_t>(v2 ? t(o.inputs[2]).data[0] : yt.zero_point[0]);
    const auto p = ints(o.inputs[1]);
    const auto xs = row_strides(xt.shape);
    std::vector<int8_t> y;
    each_index(yt.shape, [&](const std::vector<int32_t>& idx) {
      int64_t at = 0;
      bool inside = true;
      for (size_t d = 0; d < idx.size(); ++d) {
        const int32_t i = idx[d] - p[2 * d];
        inside = inside && i >= 0 && i < xt.shape[d];
        at += i * xs[d];
      }
      y.push_back(inside ? x[static_cast<size_t>(at)] : value);
    });
    return y;
  }

  std::vector<int8_t> concatenation(const TfliteOperator& o,
                                    const std::map<int, std::vector<int8_t>>& v) const {
    const TfliteTensor& yt = t(o.outputs[0]);
    const auto rank = static_cast<int32_t>(yt.shape.size());
    const int32_t axis = o.axis < 0 ? o.axis + rank : o.axis;
    int64_t outer = 1;
    for (int32_t d = 0; d < axis; ++d) outer *= yt.shape[static_cast<size_t>(d)];
    std::vector<int8_t> y;
    for (int64_t b = 0; b < outer; ++b) {
      for (int32_t in : o.inputs) {
        const int64_t chunk = t(in).elements() / outer;
        const auto& xv = v.at(in);
        y.insert(y.end(), xv.begin() + b * chunk, xv.begin() + (b + 1) * chunk);
      }
    }
    return y;
  }

  std::vector<int8_t> transpose(const TfliteOperator& o, const std::vector<int8_t>& x) const {
    const auto perm = ints(o.inputs[1]);
    const auto xs = row_strides(t(o.inputs[0]).shape);
    std::vector<int8_t> y;
    each_index(t(o.outputs[0]).shape, [&](const std::vector<int32_t>& idx) {
      int64_t at = 0;
      for (size_t d = 0; d < idx.size(); ++d) at += idx[d] * xs[static_cast<size_t>(perm[d])];
      y.push_back(x[static_cast<size_t>(at)]);
    });
    return y;
  }

  // StridedSlice without ellipsis or new axes: begin/end masks, negative indices,
  // shrink_axis_mask, `offset`.
  std::vector<int8_t> strided_slice(const TfliteOperator& o, const std::vector<int8_t>& x) const {
    const auto& shape = t(o.inputs[0]).shape;
    const auto begin = ints(o.inputs[1]), end = ints(o.inputs[2]), stride = ints(o.inputs[3]);
    const auto xs = row_strides(shape);
    std::vector<std::vector<int64_t>> picks(shape.size());
    for (size_t d = 0; d < shape.size(); ++d) {
      const int32_t n = shape[d];
      auto norm = [&](int32_t i) { return i < 0 ? i + n : i; };
      const int32_t st = stride[d];
      int32_t b = (o.begin_mask >> d) & 1 ? (st > 0 ? 0 : n - 1) : norm(begin[d]);
      int32_t e = (o.end_mask >> d) & 1 ? (st > 0 ? n : -1)
                                        : norm(o.slice_offset ? begin[d] + end[d] : end[d]);
      if ((o.shrink_axis_mask >> d) & 1) {
        b = norm(begin[d]);
        picks[d] = {b * xs[d]};
        continue;
      }
      b = st > 0 ? std::clamp(b, 0, n) : std::clamp(b, -1, n - 1);
      e = st > 0 ? std::clamp(e, 0, n) : std::clamp(e, -1, n - 1);
      for (int32_t i = b; st > 0 ? i < e : i > e; i += st) picks[d].push_back(i * xs[d]);
    }
    std::vector<int8_t> y;
    std::vector<int32_t> counts;
    for (const auto& p : picks) counts.push_back(static_cast<int32_t>(p.size()));
    each_index(counts, [&](const std::vector<int32_t>& idx) {
      int64_t at = 0;
      for (size_t d = 0; d < idx.size(); ++d) at += picks[d][static_cast<size_t>(idx[d])];
      y.push_back(x[static_cast<size_t>(at)]);
    });
    return y;
  }

  std::vector<int8_t> op(const TfliteOperator& o, std::map<int, std::vector<int8_t>>& v) const {
    const auto& x = v.at(o.inputs[0]);
    const TfliteTensor& xt = t(o.inputs[0]);
    const TfliteTensor& yt = t(o.outputs[0]);
    std::vector<int8_t> y(static_cast<size_t>(yt.elements()));
    const int32_t in_zp = static_cast<int32_t>(xt.zero_point[0]);
    const int32_t out_zp = static_cast<int32_t>(yt.zero_point[0]);
    const Range act = activation(o.activation, yt.scale[0], out_zp);
    auto clamp = [&](int64_t a) {
      return static_cast<int8_t>(std::clamp<int64_t>(a, act.min, act.max));
    };
    switch (o.code) {
      case 3:    // CONV_2D
      case 4:    // DEPTHWISE_CONV_2D
      case 9: {  // FULLY_CONNECTED
        const TfliteTensor& w = t(o.inputs[1]);
        const int8_t* wq = v.at(o.inputs[1]).data();
        std::vector<int32_t> bias;
        if (o.inputs.size() > 2 && o.inputs[2] >= 0) {
          bias.resize(static_cast<size_t>(t(o.inputs[2]).elements()));
          std::memcpy(bias.data(), t(o.inputs[2]).data.data(), bias.size() * 4);
        }
        auto requant = [&](int64_t acc, int c) {
          const double ws = w.scale[w.scale.size() == 1 ? 0 : static_cast<size_t>(c)];
          int32_t m = 0;
          int s = 0;
          quantize_multiplier(static_cast<double>(xt.scale[0]) * ws / yt.scale[0], &m, &s);
          if (!bias.empty()) acc += bias[static_cast<size_t>(c)];
          return clamp(int64_t{mbqm(static_cast<int32_t>(acc), m, s)} + out_zp);
        };
        if (o.code == 9) {
          const int out_f = w.shape[0], in_f = w.shape[1];
          const int64_t batches = xt.elements() / in_f;
          for (int64_t b = 0; b < batches; ++b)
            for (int oc = 0; oc < out_f; ++oc) {
              int64_t acc = 0;
              for (int i = 0; i < in_f; ++i)
                acc += (int64_t{x[static_cast<size_t>(b * in_f + i)]} - in_zp) * wq[oc * in_f + i];
              y[static_cast<size_t>(b * out_f + oc)] = requant(acc, oc);
            }
          return y;
        }
        const auto xd = dims4(xt.shape), yd = dims4(yt.shape), wd = dims4(w.shape);
        const int fh = wd[1], fw = wd[2];
        const int ph = pad_before(o.padding, xd[1], fh, o.stride_h, o.dilation_h, yd[1]);
        const int pw = pad_before(o.padding, xd[2], fw, o.stride_w, o.dilation_w, yd[2]);
        const bool dw = o.code == 4;
        const int mult = dw ? yd[3] / xd[3] : 1;
        for (int b = 0; b < yd[0]; ++b)
          for (int oy = 0; oy < yd[1]; ++oy)
            for (int ox = 0; ox < yd[2]; ++ox)
              for (int oc = 0; oc < yd[3]; ++oc) {
                int64_t acc = 0;
                for (int ky = 0; ky < fh; ++ky)
                  for (int kx = 0; kx < fw; ++kx) {
                    const int iy = oy * o.stride_h - ph + ky * o.dilation_h;
                    const int ix = ox * o.stride_w - pw + kx * o.dilation_w;
                    if (iy < 0 || iy >= xd[1] || ix < 0 || ix >= xd[2]) continue;
                    const size_t base =
                        ((static_cast<size_t>(b) * xd[1] + iy) * xd[2] + ix) * xd[3];
                    if (dw) {
                      acc += (int64_t{x[base + static_cast<size_t>(oc / mult)]} - in_zp) *
                             wq[(ky * fw + kx) * yd[3] + oc];
                    } else {
                      for (int ic = 0; ic < xd[3]; ++ic)
                        acc += (int64_t{x[base + static_cast<size_t>(ic)]} - in_zp) *
                               wq[((oc * fh + ky) * fw + kx) * xd[3] + ic];
                    }
                  }
                y[((static_cast<size_t>(b) * yd[1] + oy) * yd[2] + ox) * yd[3] + oc] =
                    requant(acc, oc);
              }
        return y;
      }
      case 1:     // AVERAGE_POOL_2D
      case 17: {  // MAX_POOL_2D
        const auto xd = dims4(xt.shape), yd = dims4(yt.shape);
        const int ph = pad_before(o.padding, xd[1], o.filter_h, o.stride_h, 1, yd[1]);
        const int pw = pad_before(o.padding, xd[2], o.filter_w, o.stride_w, 1, yd[2]);
        for (int b = 0; b < yd[0]; ++b)
          for (int oy = 0; oy < yd[1]; ++oy)
            for (int ox = 0; ox < yd[2]; ++ox)
              for (int c = 0; c < yd[3]; ++c) {
                int64_t sum = 0, count = 0, mx = -128;
                for (int ky = 0; ky < o.filter_h; ++ky)
                  for (int kx = 0; kx < o.filter_w; ++kx) {
                    const int iy = oy * o.stride_h - ph + ky, ix = ox * o.stride_w - pw + kx;
                    if (iy < 0 || iy >= xd[1] || ix < 0 || ix >= xd[2]) continue;
                    const int8_t q =
                        x[((static_cast<size_t>(b) * xd[1] + iy) * xd[2] + ix) * xd[3] +
                          static_cast<size_t>(c)];
                    sum += q;
                    mx = std::max<int64_t>(mx, q);
                    ++count;
                  }
                const int64_t avg = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                y[((static_cast<size_t>(b) * yd[1] + oy) * yd[2] + ox) * yd[3] + c] =
                    clamp(o.code == 1 ? avg : mx);
              }
        return y;
      }
      case 22:  // RESHAPE
      case 43:  // SQUEEZE
        return x;
      case 14:  // LOGISTIC
      case 28:  // TANH
        for (size_t i = 0; i < y.size(); ++i)
          y[i] = logistic_or_tanh(o.code == 14, xt.scale[0], in_zp, x[i]);
        return y;
      case 117:  // HARD_SWISH
        for (size_t i = 0; i < y.size(); ++i)
          y[i] = hard_swish(xt.scale[0], in_zp, yt.scale[0], out_zp, x[i]);
        return y;
      case 19: {  // RELU (ReluQuantized)
        int32_t m = 0;
        int sh = 0;
        quantize_multiplier(static_cast<double>(xt.scale[0]) / yt.scale[0], &m, &sh);
        for (size_t i = 0; i < y.size(); ++i) {
          const int32_t r = out_zp + mbqm(x[i] - in_zp, m, sh);
          y[i] = static_cast<int8_t>(std::clamp(r, std::max(-128, out_zp), 127));
        }
        return y;
      }
      case 21: {  // RELU6 (Relu6Quantized, in the input's units)
        const int32_t six =
            std::clamp(static_cast<int32_t>(std::round(6.0f / xt.scale[0])) + in_zp, -128, 127);
        for (size_t i = 0; i < y.size(); ++i)
          y[i] = static_cast<int8_t>(x[i] > six ? six : (x[i] < in_zp ? in_zp : x[i]));
        return y;
      }
      case 40:  // MEAN
        return mean(o, x);
      case 34:  // PAD
      case 60:  // PADV2
        return pad(o, x);
      case 2:  // CONCATENATION
        return concatenation(o, v);
      case 39:  // TRANSPOSE
        return transpose(o, x);
      case 45:  // STRIDED_SLICE
        return strided_slice(o, x);
      case 18: {  // MUL (reference_integer_ops::MulElementwise)
        const TfliteTensor& x2t = t(o.inputs[1]);
        std::vector<int8_t> x2;
        if (!x2t.data.empty()) {
          x2.assign(x2t.data.begin(), x2t.data.end());
        } else {
          x2 = v.at(o.inputs[1]);
        }
        int32_t m = 0;
        int sh = 0;
        quantize_multiplier(static_cast<double>(xt.scale[0]) * static_cast<double>(x2t.scale[0]) /
                                static_cast<double>(yt.scale[0]),
                            &m, &sh);
        const auto zp2 = static_cast<int32_t>(x2t.zero_point[0]);
        for (size_t i = 0; i < y.size(); ++i) {
          const int32_t prod = (x[i] - in_zp) * (x2[x2.size() == 1 ? 0 : i] - zp2);
          y[i] = clamp(int64_t{mbqm(prod, m, sh)} + out_zp);
        }
        return y;
      }
      case 0: {  // ADD (reference_integer_ops::AddElementwise, left shift 20)
        const TfliteTensor& x2t = t(o.inputs[1]);
        std::vector<int8_t> x2;
        if (!x2t.data.empty()) {
          x2.assign(x2t.data.begin(), x2t.data.end());
        } else {
          x2 = v.at(o.inputs[1]);
        }
        const double twice_max = 2.0 * static_cast<double>(std::max(xt.scale[0], x2t.scale[0]));
        int32_t m1 = 0, m2 = 0, mo = 0;
        int s1 = 0, s2 = 0, so = 0;
        quantize_multiplier(xt.scale[0] / twice_max, &m1, &s1);
        quantize_multiplier(x2t.scale[0] / twice_max, &m2, &s2);
        quantize_multiplier(twice_max / ((1 << 20) * static_cast<double>(yt.scale[0])), &mo, &so);
        const auto zp2 = static_cast<int32_t>(x2t.zero_point[0]);
        for (size_t i = 0; i < y.size(); ++i) {
          const int32_t a = mbqm((x[i] - in_zp) * (1 << 20), m1, s1);
          const int32_t b = mbqm((x2[x2.size() == 1 ? 0 : i] - zp2) * (1 << 20), m2, s2);
          y[i] = clamp(int64_t{mbqm(a + b, mo, so)} + out_zp);
        }
        return y;
      }
      case 25: {  // SOFTMAX
        const int depth = xt.shape.back();
        for (size_t r = 0; r < y.size() / static_cast<size_t>(depth); ++r)
          softmax(xt.scale[0], o.beta, depth, x.data() + r * depth, y.data() + r * depth);
        return y;
      }
      default:
        return y;
    }
  }
  const TfliteModel& m_;
};

}  // namespace tflm_reference
