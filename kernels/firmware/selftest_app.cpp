// On-target twin check: the optimized kernels as built for this core (on a Cortex-M4 the
// DSP paths: conv2d_dsp with im2col of two pixels, its pointwise form reading the input
// in place, fully_connected_dsp, depthwise_dsp, depthwise_3x3_dsp, elementwise_dsp's Add
// and Mul, pooling_dsp's MaxPool2D, AveragePool2D and Mean, and requant_dsp's loops)
// against the reference kernels, on seeded random shapes (odd channel counts, borders,
// strides, dilation, zero points -128/127, fused clamps, batches; Conv2D, depthwise and
// pool outputs overlapping the input as the planner may place them, element-wise outputs
// on their first input) and quantization (shifts -31..4, deep right shifts with large
// sums). Prints "selftest: N cases, M mismatches (per kind
// ...)" over semihosting; exit code 0 only if M is 0.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "../ops/optimized/requant_dsp.h"  // the DSP requantization loops, checked directly
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/fully_connected.h"
#include "tinyfleet/kernels/ops/in_place.h"
#include "tinyfleet/kernels/ops/pooling.h"
#include "tinyfleet/kernels/ops/quantization.h"

using namespace tinyfleet::kernels;

namespace {

uint32_t g_state = 2463534242u;
uint32_t next() {  // xorshift32
  g_state ^= g_state << 13;
  g_state ^= g_state >> 17;
  g_state ^= g_state << 5;
  return g_state;
}
int32_t range(int32_t lo, int32_t hi) {
  return lo + static_cast<int32_t>(next() % static_cast<uint32_t>(hi - lo + 1));
}
void fill(int8_t* p, int32_t n) {
  for (int32_t i = 0; i < n; ++i) p[i] = static_cast<int8_t>(range(-128, 127));
}

constexpr int32_t kMaxC = 40;
alignas(16) int8_t g_in[12 * 12 * kMaxC], g_w[kMaxC * 5 * 5 * kMaxC], g_ref[12 * 12 * kMaxC * 3],
    g_opt[12 * 12 * kMaxC * 3];
alignas(32) uint8_t g_scratch[5 * 5 * kMaxC * 2 + 64];
int32_t g_bias[kMaxC * 3], g_mult[kMaxC * 3], g_shift[kMaxC * 3];

// Real multipliers 2^-e * [0.5, 1): kind 0: e in 0..14 (biases +-2^14: e 0 or 1 takes
// the DSP requantization's round loop); kind 1: e in 14..30, biases +-2^28 (deep right
// shifts, where rounding decides); kind 2: e in -4..31, biases +-8 (shifts -31..4: left
// shifts take the C path; the case keeps its sums small); kind 3: e in 2..16, biases
// +-2^16 (the short loop).
void quantization(int32_t channels, int32_t kind = 0) {
  for (int32_t i = 0; i < channels; ++i) {
    const int32_t bias_bits = kind == 0 ? 14 : kind == 1 ? 28 : kind == 2 ? 3 : 16;
    g_bias[i] = range(-(1 << bias_bits), 1 << bias_bits);
    int s = 0;
    const double scale = 0.5 + range(0, 99) / 200.0;
    const int32_t e = kind == 0   ? range(0, 14)
                      : kind == 1 ? range(14, 30)
                      : kind == 2 ? range(-4, 31)
                                  : range(2, 16);
    quantize_multiplier(
        e >= 0 ? scale / static_cast<double>(1u << e) : scale * static_cast<double>(1 << -e),
        &g_mult[i], &s);
    g_shift[i] = s;
  }
}

// The in-place contract (in_place.h): the optimized kernel (run(input, output)) with its
// output starting overlap_distance bytes before its input in one buffer gives g_ref's
// bytes. The planner places DepthwiseConv2D, Conv2D and the pools this way.
alignas(16) int8_t g_place[12 * 12 * kMaxC * 5];
template <typename Run>
bool in_place_same(const WindowGeometry& g, const Dims& in, const Dims& out, Run run) {
  const int64_t distance = overlap_distance(in, out, g, 1);
  const auto in_bytes = static_cast<size_t>(in.elements());
  const auto out_bytes = static_cast<size_t>(out.elements());
  if (distance < 0 || static_cast<size_t>(distance) + in_bytes > sizeof g_place) return false;
  std::memset(g_place, 3, sizeof g_place);
  std::memcpy(g_place + distance, g_in, in_bytes);
  return run(g_place + distance, g_place) == Status::kOk &&
         std::memcmp(g_place, g_ref, out_bytes) == 0;
}

WindowGeometry window(const Conv2DParams& p) {
  return {p.stride_h, p.stride_w, p.padding.top, p.padding.left};
}

// A Conv2D (1 or 2 images; pointwise: 1x1, stride 1, no padding: the DSP path that reads
// the input in place) or a DepthwiseConv2D case.
bool conv_case(bool depthwise, bool pointwise = false, bool dw3x3 = false) {
  Conv2DParams p;
  Dims in{1, range(1, 12), range(1, 12), range(1, depthwise ? 24 : kMaxC)};
  Dims f;
  f.h = range(1, 5);
  f.w = range(1, 5);
  p.stride_h = range(1, 2);
  p.stride_w = range(1, 2);
  p.padding = {range(0, 2), range(0, 2), range(0, 2), range(0, 2)};
  p.input_offset = -range(-128, 127);
  p.output_offset = range(-128, 127);
  const int32_t kind = range(0, 3);
  p.dilation_h = range(1, 2);
  p.dilation_w = range(1, 2);
  if (range(0, 3) == 0) p.input_offset = range(0, 1) ? 128 : -127;       // zero points -128, 127
  if (range(0, 3) == 0) p.activation = {range(-128, 0), range(0, 127)};  // fused clamps
  if (!depthwise && range(0, 3) == 0) in = {2, range(1, 8), range(1, 8), range(1, kMaxC)};
  if (pointwise) {
    in = {range(1, 2), range(1, 8), range(1, 8), range(1, kMaxC)};
    f.h = f.w = 1;
    p.stride_h = p.stride_w = 1;
    p.padding = {};
  }
  if (dw3x3) {  // depthwise_3x3_dsp's windows: 3x3, dilation 1, channels 4..64 by 4
    in.c = 4 * range(1, 16);
    if (in.c > kMaxC) in.h = range(1, 9), in.w = range(1, 9);  // within g_in
    f.h = f.w = 3;
    p.dilation_h = p.dilation_w = 1;
  }
  const int32_t mult = depthwise && !dw3x3 ? range(1, 2) : 1;
  if (depthwise) {
    f.n = 1;
    f.c = in.c * mult;
  } else {
    f.n = range(1, kMaxC);
    f.c = in.c;
  }
  Dims out{in.n,
           conv_output_extent(in.h, f.h, p.stride_h, p.dilation_h, p.padding.top, p.padding.bottom),
           conv_output_extent(in.w, f.w, p.stride_w, p.dilation_w, p.padding.left, p.padding.right),
           depthwise ? f.c : f.n};
  if (out.h <= 0 || out.w <= 0) return true;
  fill(g_in, static_cast<int32_t>(in.elements()));
  fill(g_w, static_cast<int32_t>(f.elements()));
  if (kind == 2) {  // small sums, so that multipliers above 1 do not just saturate
    p.input_offset = range(-4, 4);
    for (int64_t i = 0; i < in.elements(); ++i) g_in[i] = static_cast<int8_t>(range(-4, 4));
    for (int64_t i = 0; i < f.elements(); ++i) {
      g_w[i] = static_cast<int8_t>(range(0, 7) == 0 ? range(-1, 1) : 0);
    }
  }
  quantization(out.c, kind);
  PerChannelRequant rq{g_mult, g_shift};
  const auto n = static_cast<size_t>(out.elements());
  std::memset(g_ref, 1, n);
  std::memset(g_opt, 2, n);
  Status a, b;
  if (depthwise) {
    DepthwiseParams d;
    static_cast<Conv2DParams&>(d) = p;
    d.depth_multiplier = mult;
    a = ref::depthwise_conv2d(d, rq, in, g_in, f, g_w, g_bias, out, g_ref);
    b = opt::depthwise_conv2d(d, rq, in, g_in, f, g_w, g_bias, out, g_opt);
    if (!in_place_same(window(p), in, out, [&](const int8_t* x, int8_t* y) {
          return opt::depthwise_conv2d(d, rq, in, x, f, g_w, g_bias, out, y);
        })) {
      return false;
    }
  } else {
    a = ref::conv2d(p, rq, in, g_in, f, g_w, g_bias, out, g_ref, nullptr, 0);
    b = opt::conv2d(p, rq, in, g_in, f, g_w, g_bias, out, g_opt, g_scratch, sizeof g_scratch);
    if (in.n == 1 && !in_place_same(window(p), in, out, [&](const int8_t* x, int8_t* y) {
          return opt::conv2d(p, rq, in, x, f, g_w, g_bias, out, y, g_scratch, sizeof g_scratch);
        })) {
      return false;
    }
  }
  return a == Status::kOk && b == Status::kOk && std::memcmp(g_ref, g_opt, n) == 0;
}

bool fc_case() {
  FullyConnectedParams p;
  const int32_t batches = range(1, 3), in = range(1, 300), out = range(1, kMaxC);
  p.input_offset = -range(-128, 127);
  p.output_offset = range(-128, 127);
  if (range(0, 3) == 0) p.input_offset = range(0, 1) ? 128 : -127;       // zero points -128, 127
  if (range(0, 3) == 0) p.activation = {range(-128, 0), range(0, 127)};  // fused clamps
  fill(g_in, batches * in);
  fill(g_w, in * out);
  quantization(out, range(0, 1) ? 3 : range(0, 1));
  PerChannelRequant rq{g_mult, g_shift};
  const auto n = static_cast<size_t>(batches * out);
  std::memset(g_ref, 1, n);
  std::memset(g_opt, 2, n);
  const Status a =
      ref::fully_connected(p, rq, batches, in, g_in, out, g_w, g_bias, g_ref, nullptr, 0);
  const Status b = opt::fully_connected(p, rq, batches, in, g_in, out, g_w, g_bias, g_opt,
                                        g_scratch, sizeof g_scratch);
  return a == Status::kOk && b == Status::kOk && std::memcmp(g_ref, g_opt, n) == 0;
}

// Add (elementwise_dsp.h: tables from 256 elements on) or Mul (four elements a word, the
// last size % 4 by the reference): random scales and zero points (-128 and 127 among
// them), clamps, a broadcast second input, and once more with the output on the first
// input.
bool elementwise_case(bool mul) {
  const int32_t size = range(0, 1) ? range(1, 300) : range(256, 4000);
  const int32_t size2 = range(0, 4) == 0 ? 1 : size;
  auto scale = [] { return 0.002f * static_cast<float>(range(1, 100)); };
  auto zero_point = [] { return range(0, 3) == 0 ? (range(0, 1) ? -128 : 127) : range(-128, 127); };
  const TensorQuant q1{scale(), zero_point()}, q2{scale(), zero_point()}, qo{scale(), zero_point()};
  ActivationRange act;
  if (range(0, 3) == 0) act = {range(-128, 0), range(0, 127)};
  const AddParams pa = make_add_params(q1, q2, qo, act);
  const MulParams pm = make_mul_params(q1, q2, qo, act);
  auto run = [&](bool optimized, const int8_t* x, int8_t* y) {
    if (mul) {
      return optimized ? opt::mul(pm, size, x, size2, g_w, y)
                       : ref::mul(pm, size, x, size2, g_w, y);
    }
    return optimized ? opt::add(pa, size, x, size2, g_w, y) : ref::add(pa, size, x, size2, g_w, y);
  };
  fill(g_in, size);
  fill(g_w, size2);
  std::memset(g_ref, 1, size + 1);
  std::memset(g_opt, 2, size + 1);
  const Status a = run(false, g_in, g_ref);
  const Status b = run(true, g_in, g_opt);
  std::memcpy(g_place, g_in, size);
  const Status c = run(true, g_place, g_place);
  return a == Status::kOk && b == Status::kOk && c == Status::kOk &&
         std::memcmp(g_ref, g_opt, size) == 0 && g_opt[size] == 2 &&
         std::memcmp(g_ref, g_place, size) == 0;
}

// MaxPool2D or AveragePool2D (pooling_dsp.h: channels a multiple of 4; others, and
// average windows over 256 taps, take the reference): 1-2 images, windows up to 5x5 or
// the whole image (up to 24x24, one image), strides 1-3, padding, clamps; batch-1 cases also with
// the output overlapping the input at overlap_distance.
bool pool_case(bool average) {
  const bool global = range(0, 3) == 0;
  Dims in{range(1, 2), range(1, 12), range(1, 12), range(0, 3) ? 4 * range(1, 10) : range(1, 40)};
  if (global) in = {1, range(1, 24), range(1, 24), 4 * range(1, 2)};  // up to 576 taps
  if (in.elements() > static_cast<int64_t>(sizeof g_in)) in.n = 1;    // within g_in
  PoolParams p;
  p.filter_h = global ? in.h : range(1, 5);
  p.filter_w = global ? in.w : range(1, 5);
  p.stride_h = range(1, 3);
  p.stride_w = range(1, 3);
  if (!global) p.padding = {range(0, 2), range(0, 2), range(0, 2), range(0, 2)};
  if (range(0, 3) == 0) p.activation = {range(-128, 0), range(0, 127)};
  const Dims out{
      in.n, conv_output_extent(in.h, p.filter_h, p.stride_h, 1, p.padding.top, p.padding.bottom),
      conv_output_extent(in.w, p.filter_w, p.stride_w, 1, p.padding.left, p.padding.right), in.c};
  if (out.h <= 0 || out.w <= 0) return true;
  fill(g_in, static_cast<int32_t>(in.elements()));
  if (range(0, 7) == 0) std::memset(g_in, range(0, 1) ? -128 : 127, in.elements());  // saturated
  auto run = [&](bool optimized, const int8_t* x, int8_t* y) {
    if (average) {
      return optimized ? opt::average_pool2d(p, in, x, out, y)
                       : ref::average_pool2d(p, in, x, out, y);
    }
    return optimized ? opt::max_pool2d(p, in, x, out, y) : ref::max_pool2d(p, in, x, out, y);
  };
  const auto n = static_cast<size_t>(out.elements());
  std::memset(g_ref, 1, n + 1);
  std::memset(g_opt, 2, n + 1);
  const Status a = run(false, g_in, g_ref);
  const Status b = run(true, g_in, g_opt);
  if (in.n == 1 && !in_place_same({p.stride_h, p.stride_w, p.padding.top, p.padding.left}, in, out,
                                  [&](const int8_t* x, int8_t* y) { return run(true, x, y); })) {
    return false;
  }
  return a == Status::kOk && b == Status::kOk && std::memcmp(g_ref, g_opt, n) == 0 && g_opt[n] == 2;
}

// Mean over H and W (pooling_dsp.h: int16 sums of 256 pixels at a time): images up to
// 24x24 (over 256 pixels), 1-2 of them, channels (multiples of 4 and not), random scales
// (multipliers above 1 among them) and zero points.
bool mean_case() {
  const int32_t c = range(0, 3) ? 4 * range(1, 16) : range(1, 40);
  Dims in{range(1, 2), range(1, 24), range(1, 24), c};
  while (in.elements() > static_cast<int64_t>(sizeof g_in)) in.h = (in.h + 1) / 2, in.n = 1;
  auto scale = [] { return 0.002f * static_cast<float>(range(1, 100)); };
  const TensorQuant qi{scale(), range(-128, 127)}, qo{scale() / 8, range(-128, 127)};
  const MeanParams p = make_mean_params(qi, qo, in.h * in.w);
  fill(g_in, static_cast<int32_t>(in.elements()));
  const auto n = static_cast<size_t>(in.n * in.c);
  std::memset(g_ref, 1, n + 1);
  std::memset(g_opt, 2, n + 1);
  const Status a = ref::mean_hw(p, in, g_in, g_ref);
  const Status b = opt::mean_hw(p, in, g_in, g_opt);
  return a == Status::kOk && b == Status::kOk && std::memcmp(g_ref, g_opt, n) == 0 && g_opt[n] == 2;
}

// The DSP requantization loops (requant_dsp.h; a quarter of the runs the uniform one of
// Add, Mul and Mean) against TFLite's arithmetic on 64 channels: accumulators over the whole int32
// range, near 0 and at the extremes, multipliers in [2^30, 2^31) and the edges 0, 2^30, 2^31 - 1;
// shifts -31..-2 (the short loop) or -30..0 (the round loop); full int8 range or a clamp.
bool requant_case() {
  constexpr int32_t kChannels = 64;
  int32_t acc[kChannels];
  const int32_t loop = range(0, 3);  // 0, 1: short loop; 2: round loop; 3: any shift
  for (int32_t c = 0; c < kChannels; ++c) {
    const int32_t pick = range(0, 5);
    acc[c] = pick <= 1   ? static_cast<int32_t>(next())
             : pick == 2 ? range(-70000, 70000)
             : pick == 3 ? range(-3, 3)
                         : (range(0, 1) ? INT32_MAX - range(0, 3) : INT32_MIN + range(0, 3));
    const int32_t m = range(0, 7);
    g_mult[c] = m == 0   ? 0
                : m == 1 ? (1 << 30)
                : m == 2 ? INT32_MAX
                         : static_cast<int32_t>((next() & 0x3fffffffu) | 0x40000000u);
    g_shift[c] = loop <= 1 ? range(-31, -2) : loop == 2 ? range(-30, 0) : range(-31, 4);
  }
  ActivationRange act;
  if (range(0, 1)) act = {range(-128, 0), range(0, 127)};
  const int32_t out_offset = range(-128, 127);
  const bool uniform = range(0, 3) == 0;  // requantize_uniform: channel 0's pair for all
  for (int32_t c = 0; uniform && c < kChannels; ++c) g_mult[c] = g_mult[0], g_shift[c] = g_shift[0];
  opt::dsp::Requant r;
  opt::dsp::UniformRequant u;
  if (!opt::dsp::requant_setup({g_mult, g_shift}, kChannels, out_offset, act, &r) ||
      !opt::dsp::uniform_requant_setup(g_mult[0], g_shift[0], out_offset, act, &u)) {
    return false;
  }
  const int32_t first = range(0, kChannels - 1);  // any start channel, any length
  const int32_t n = uniform ? range(0, std::min(kChannels - first, opt::dsp::kUniformBlock))
                            : range(0, kChannels - first);
  std::memset(g_opt, 2, kChannels + 1);
  if (uniform) {
    opt::dsp::requantize_uniform(u, acc + first, n, g_opt);
  } else {
    opt::dsp::requantize_run(r, acc + first, first, n, g_opt);
  }
  for (int32_t k = 0; k < n; ++k) {
    const int32_t c = first + k;
    int32_t v = multiply_by_quantized_multiplier(acc[c], g_mult[c], g_shift[c]) + out_offset;
    v = v < act.min ? act.min : v > act.max ? act.max : v;
    if (g_opt[k] != static_cast<int8_t>(v)) return false;
  }
  return g_opt[n] == 2;  // nothing written past n
}

}  // namespace

int main() {
  int cases = 0, conv = 0, pointwise = 0, depthwise = 0, fc = 0, add = 0, mul = 0, max_pool = 0,
      average_pool = 0, mean = 0, requant = 0;
  for (int t = 0; t < 200; ++t) {
    conv += !conv_case(false);
    pointwise += !conv_case(false, true);
    depthwise += !conv_case(true);
    depthwise += !conv_case(true, false, true);
    fc += !fc_case();
    add += !elementwise_case(false);
    mul += !elementwise_case(true);
    max_pool += !pool_case(false);
    average_pool += !pool_case(true);
    mean += !mean_case();
    cases += 10;
  }
  for (int t = 0; t < 2000; ++t, ++cases) requant += !requant_case();
  const int mismatches =
      conv + pointwise + depthwise + fc + add + mul + max_pool + average_pool + mean + requant;
  std::printf(
      "selftest: %d cases, %d mismatches (conv2d %d, pointwise %d, depthwise %d, fully "
      "connected %d, add %d, mul %d, max pool %d, average pool %d, mean %d, requantization "
      "%d)\n",
      cases, mismatches, conv, pointwise, depthwise, fc, add, mul, max_pool, average_pool, mean,
      requant);
  return mismatches == 0 ? 0 : 1;
}
