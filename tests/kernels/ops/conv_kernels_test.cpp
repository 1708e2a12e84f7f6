// Conv2D, DepthwiseConv2D and FullyConnected: the optimized kernels (with SIMD and
// the portable build of the same code) are bit-exact with the reference kernels on
// randomized shapes and quantization; the reference agrees with float32.
#include <gtest/gtest.h>

#include <cmath>

#include "random_conv.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"
#include "tinyfleet/kernels/ops/fully_connected.h"

using namespace tinyfleet::kernels;
using tinyfleet::kernels::testing::ConvCase;
using tinyfleet::kernels::testing::random_conv;
using tinyfleet::kernels::testing::Rng;

namespace {

TEST(Quantization, MultiplierMatchesTfLite) {
  int32_t m = 0;
  int s = 0;
  quantize_multiplier(0.5, &m, &s);
  EXPECT_EQ(m, 1 << 30);
  EXPECT_EQ(s, 0);
  quantize_multiplier(0.25, &m, &s);
  EXPECT_EQ(m, 1 << 30);
  EXPECT_EQ(s, -1);
  quantize_multiplier(1.5, &m, &s);
  EXPECT_EQ(m, 1610612736);  // 0.75 * 2^31
  EXPECT_EQ(s, 1);
  quantize_multiplier(0.0, &m, &s);
  EXPECT_EQ(m, 0);
  // 100 * 0.5 * 2^0 = 50; rounding is half away from zero.
  EXPECT_EQ(multiply_by_quantized_multiplier(100, 1 << 30, 0), 50);
  EXPECT_EQ(multiply_by_quantized_multiplier(3, 1 << 30, -1), 1);    // 0.75 -> 1
  EXPECT_EQ(multiply_by_quantized_multiplier(-3, 1 << 30, -1), -1);  // -0.75 -> -1
  EXPECT_EQ(multiply_by_quantized_multiplier(5, 1 << 30, -2), 1);    // 0.625 -> 1
  EXPECT_EQ(multiply_by_quantized_multiplier(-6, 1 << 30, -2), -1);  // -0.75 -> -1
  EXPECT_EQ(multiply_by_quantized_multiplier(-2, 1 << 30, -2), 0);   // -0.25 -> 0
  EXPECT_EQ(saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN), INT32_MAX);
  // Against the real product across many values.
  Rng rng(7);
  for (int i = 0; i < 2000; ++i) {
    const double real = std::pow(2.0, rng.uniform(-20.0f, 3.0f));
    quantize_multiplier(real, &m, &s);
    const int32_t x = rng.range(-(1 << 20), 1 << 20);
    EXPECT_NEAR(multiply_by_quantized_multiplier(x, m, s), x * real, 1.0) << real << " " << x;
  }
}

TEST(Conv2D, OptimizedIsBitExactWithReference) {
  Rng rng(11);
  for (int t = 0; t < 400; ++t) {
    auto c = random_conv(rng, false);
    if (c.out.h <= 0 || c.out.w <= 0) continue;
    const size_t n = static_cast<size_t>(c.out.elements());
    std::vector<int8_t> ref(n), opt(n, 1), scalar(n, 2);
    std::vector<uint8_t> scratch(conv2d_scratch_size(c.f));
    PerChannelRequant rq{c.mult.data(), c.shift.data()};
    ASSERT_EQ(ref::conv2d(c.p, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(), c.out,
                          ref.data(), nullptr, 0),
              Status::kOk);
    ASSERT_EQ(opt::conv2d(c.p, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(), c.out,
                          opt.data(), scratch.data(), scratch.size()),
              Status::kOk);
    ASSERT_EQ(opt_scalar::conv2d(c.p, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(),
                                 c.out, scalar.data(), scratch.data(), scratch.size()),
              Status::kOk);
    ASSERT_EQ(opt, ref) << "case " << t;
    ASSERT_EQ(scalar, ref) << "case " << t;
  }
}

TEST(DepthwiseConv2D, OptimizedIsBitExactWithReference) {
  Rng rng(12);
  for (int t = 0; t < 400; ++t) {
    const int32_t mult = t % 4 == 3 ? rng.range(2, 3) : 1;
    auto c = random_conv(rng, true, mult);
    if (c.out.h <= 0 || c.out.w <= 0) continue;
    DepthwiseParams p;
    static_cast<Conv2DParams&>(p) = c.p;
    p.depth_multiplier = mult;
    const size_t n = static_cast<size_t>(c.out.elements());
    std::vector<int8_t> ref(n), opt(n, 1), scalar(n, 2);
    PerChannelRequant rq{c.mult.data(), c.shift.data()};
    ASSERT_EQ(ref::depthwise_conv2d(p, rq, c.in, c.input.data(), c.f, c.filter.data(),
                                    c.bias.data(), c.out, ref.data()),
              Status::kOk);
    ASSERT_EQ(opt::depthwise_conv2d(p, rq, c.in, c.input.data(), c.f, c.filter.data(),
                                    c.bias.data(), c.out, opt.data()),
              Status::kOk);
    ASSERT_EQ(opt_scalar::depthwise_conv2d(p, rq, c.in, c.input.data(), c.f, c.filter.data(),
                                           c.bias.data(), c.out, scalar.data()),
              Status::kOk);
    ASSERT_EQ(opt, ref) << "case " << t;
    ASSERT_EQ(scalar, ref) << "case " << t;
  }
}

TEST(FullyConnected, OptimizedIsBitExactWithReference) {
  Rng rng(13);
  for (int t = 0; t < 400; ++t) {
    const int32_t batches = rng.range(1, 3), in = rng.range(1, 300), out = rng.range(1, 70);
    FullyConnectedParams p;
    p.input_offset = -rng.zero_point();
    p.output_offset = rng.zero_point();
    p.activation = rng.activation();
    auto x = rng.int8s(static_cast<size_t>(batches * in));
    auto w = rng.int8s(static_cast<size_t>(in * out));
    auto bias = rng.biases(static_cast<size_t>(out), 1 << 16);
    std::vector<int32_t> mult, shift;
    rng.requant(static_cast<size_t>(out), &mult, &shift);
    PerChannelRequant rq{mult.data(), shift.data()};
    std::vector<int8_t> ref(static_cast<size_t>(batches * out)), opt(ref.size(), 1),
        scalar(ref.size(), 2);
    std::vector<uint8_t> scratch(fully_connected_scratch_size(in));
    ASSERT_EQ(ref::fully_connected(p, rq, batches, in, x.data(), out, w.data(), bias.data(),
                                   ref.data(), nullptr, 0),
              Status::kOk);
    ASSERT_EQ(opt::fully_connected(p, rq, batches, in, x.data(), out, w.data(), bias.data(),
                                   opt.data(), scratch.data(), scratch.size()),
              Status::kOk);
    ASSERT_EQ(opt_scalar::fully_connected(p, rq, batches, in, x.data(), out, w.data(), bias.data(),
                                          scalar.data(), scratch.data(), scratch.size()),
              Status::kOk);
    ASSERT_EQ(opt, ref) << "case " << t;
    ASSERT_EQ(scalar, ref) << "case " << t;
  }
}

TEST(Conv2D, EdgeCasesAndBadShapes) {
  Rng rng(14);
  // A 1x1 image with a 3x3 filter and padding 1; extreme zero points; saturation.
  ConvCase c;
  c.in = {1, 1, 1, 3};
  c.f = {5, 3, 3, 3};
  c.p.padding = {1, 1, 1, 1};
  c.out = {1, 1, 1, 5};
  c.p.input_offset = 128;  // input zero point -128
  c.p.output_offset = 127;
  c.input = rng.int8s(3);
  c.filter = std::vector<int8_t>(135, 127);  // 5 x 3 x 3 x 3
  c.bias = std::vector<int32_t>(5, 1 << 20);
  c.mult = std::vector<int32_t>(5, 1 << 30);
  c.shift = std::vector<int32_t>(5, 1);
  std::vector<int8_t> ref(5), opt(5);
  std::vector<uint8_t> scratch(conv2d_scratch_size(c.f));
  PerChannelRequant rq{c.mult.data(), c.shift.data()};
  ASSERT_EQ(ref::conv2d(c.p, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(), c.out,
                        ref.data(), nullptr, 0),
            Status::kOk);
  ASSERT_EQ(opt::conv2d(c.p, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(), c.out,
                        opt.data(), scratch.data(), scratch.size()),
            Status::kOk);
  EXPECT_EQ(ref, std::vector<int8_t>(5, 127));  // saturated
  EXPECT_EQ(opt, ref);
  // Inconsistent shapes and too little scratch are refused, not run.
  Dims wrong_out{1, 2, 1, 5};
  EXPECT_EQ(ref::conv2d(c.p, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(),
                        wrong_out, ref.data(), nullptr, 0),
            Status::kBadShape);
  EXPECT_EQ(opt::conv2d(c.p, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(), c.out,
                        opt.data(), scratch.data(), 8),
            Status::kScratchTooSmall);
  Conv2DParams zero_stride = c.p;
  zero_stride.stride_h = 0;
  EXPECT_EQ(opt::conv2d(zero_stride, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(),
                        c.out, opt.data(), scratch.data(), scratch.size()),
            Status::kBadShape);
}

TEST(Conv2D, ReferenceAgreesWithFloat) {
  Rng rng(15);
  for (int t = 0; t < 50; ++t) {
    const Dims in{1, rng.range(3, 9), rng.range(3, 9), rng.range(1, 8)};
    const Dims f{rng.range(1, 8), 3, 3, in.c};
    Conv2DFloatParams fp;
    fp.padding = {1, 1, 1, 1};
    const Dims out{1, in.h, in.w, f.n};
    std::vector<float> x(static_cast<size_t>(in.elements())), w(static_cast<size_t>(f.elements())),
        bias(static_cast<size_t>(f.n)), y(static_cast<size_t>(out.elements()));
    for (auto& v : x) v = rng.uniform(-1.0f, 1.0f);
    for (auto& v : w) v = rng.uniform(-0.5f, 0.5f);
    for (auto& v : bias) v = rng.uniform(-0.2f, 0.2f);
    ASSERT_EQ(ref_float::conv2d(fp, in, x.data(), f, w.data(), bias.data(), out, y.data()),
              Status::kOk);
    // Quantize: input [-1, 1] asymmetric, weights per channel symmetric, bias int32.
    const TensorQuant qin{2.0f / 255.0f, 0};
    float ymin = 0, ymax = 0;
    for (float v : y) ymin = std::min(ymin, v), ymax = std::max(ymax, v);
    const TensorQuant qout{
        (ymax - ymin) / 255.0f,
        static_cast<int32_t>(std::round(-128.0f - ymin / ((ymax - ymin) / 255.0f)))};
    std::vector<int8_t> xq(x.size()), wq(w.size()), yq(y.size());
    for (size_t i = 0; i < x.size(); ++i) xq[i] = quantize_value(x[i], qin);
    std::vector<float> wscale(static_cast<size_t>(f.n));
    std::vector<int32_t> bq(static_cast<size_t>(f.n)), mult(static_cast<size_t>(f.n)),
        shift(static_cast<size_t>(f.n));
    const int32_t per = f.h * f.w * f.c;
    for (int32_t oc = 0; oc < f.n; ++oc) {
      float amax = 1e-8f;
      for (int32_t i = 0; i < per; ++i) amax = std::max(amax, std::fabs(w[oc * per + i]));
      wscale[oc] = amax / 127.0f;
      for (int32_t i = 0; i < per; ++i) {
        wq[oc * per + i] = static_cast<int8_t>(std::round(w[oc * per + i] / wscale[oc]));
      }
      bq[oc] = static_cast<int32_t>(std::round(bias[oc] / (qin.scale * wscale[oc])));
      int s = 0;
      quantize_multiplier(static_cast<double>(qin.scale) * wscale[oc] / qout.scale, &mult[oc], &s);
      shift[oc] = s;
    }
    Conv2DParams p;
    p.padding = fp.padding;
    p.input_offset = -qin.zero_point;
    p.output_offset = qout.zero_point;
    ASSERT_EQ(ref::conv2d(p, {mult.data(), shift.data()}, in, xq.data(), f, wq.data(), bq.data(),
                          out, yq.data(), nullptr, 0),
              Status::kOk);
    for (size_t i = 0; i < y.size(); ++i) {
      // Input and weight rounding add up over 9*c products: allow a few output steps.
      EXPECT_NEAR(dequantize_value(yq[i], qout), y[i], 3.0f * qout.scale) << i;
    }
  }
}

}  // namespace
