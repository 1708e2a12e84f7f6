// Add, Mul, pooling, Mean, Softmax, Logistic, Tanh, Concatenation, Pad, Quantize and
// Dequantize: int8 kernels against the float32 references, and by hand where a
// reader can check the numbers.
#include <gtest/gtest.h>

#include <cmath>

#include "random_tensors.h"
#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/data_movement.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/pooling.h"

using namespace tinyfleet::kernels;
using tinyfleet::kernels::testing::Rng;

namespace {

std::vector<float> dequantized(const std::vector<int8_t>& q, const TensorQuant& p) {
  std::vector<float> out(q.size());
  for (size_t i = 0; i < q.size(); ++i) out[i] = dequantize_value(q[i], p);
  return out;
}

TEST(AddMul, AgreeWithFloatWithinOneStep) {
  Rng rng(21);
  for (int t = 0; t < 200; ++t) {
    const TensorQuant a{rng.uniform(0.005f, 0.1f), rng.zero_point()};
    const TensorQuant b{rng.uniform(0.005f, 0.1f), rng.zero_point()};
    const int64_t n = rng.range(1, 300);
    const bool broadcast = t % 5 == 0;
    auto x = rng.int8s(static_cast<size_t>(n));
    auto y = rng.int8s(broadcast ? 1 : static_cast<size_t>(n));
    const auto xf = dequantized(x, a), yf = dequantized(y, b);
    std::vector<float> sum(static_cast<size_t>(n)), prod(sum.size());
    ASSERT_EQ(
        ref_float::add({}, n, xf.data(), static_cast<int64_t>(yf.size()), yf.data(), sum.data()),
        Status::kOk);
    ASSERT_EQ(
        ref_float::mul({}, n, xf.data(), static_cast<int64_t>(yf.size()), yf.data(), prod.data()),
        Status::kOk);
    auto range = [](const std::vector<float>& v) {
      float lo = 0, hi = 0;
      for (float f : v) lo = std::min(lo, f), hi = std::max(hi, f);
      const float scale = std::max(hi - lo, 1e-3f) / 255.0f;
      return TensorQuant{scale, static_cast<int32_t>(std::round(-128.0f - lo / scale))};
    };
    const TensorQuant qs = range(sum), qp = range(prod);
    std::vector<int8_t> s(sum.size()), s_opt(sum.size()), m(sum.size()), m_opt(sum.size());
    const auto ap = make_add_params(a, b, qs, {});
    const auto mp = make_mul_params(a, b, qp, {});
    const int64_t n2 = static_cast<int64_t>(y.size());
    ASSERT_EQ(ref::add(ap, n, x.data(), n2, y.data(), s.data()), Status::kOk);
    ASSERT_EQ(opt::add(ap, n, x.data(), n2, y.data(), s_opt.data()), Status::kOk);
    ASSERT_EQ(ref::mul(mp, n, x.data(), n2, y.data(), m.data()), Status::kOk);
    ASSERT_EQ(opt::mul(mp, n, x.data(), n2, y.data(), m_opt.data()), Status::kOk);
    EXPECT_EQ(s, s_opt);
    EXPECT_EQ(m, m_opt);
    for (size_t i = 0; i < sum.size(); ++i) {
      EXPECT_NEAR(dequantize_value(s[i], qs), sum[i], 1.01f * qs.scale);
      EXPECT_NEAR(dequantize_value(m[i], qp), prod[i], 1.01f * qp.scale);
    }
  }
  EXPECT_EQ(ref::add(AddParams{}, 4, nullptr, 3, nullptr, nullptr), Status::kBadShape);
}

TEST(Pooling, ByHandAndAgainstFloat) {
  // 1x2x2x1 image [1 2; 3 4] (scale 1, zero point 0): 2x2 average = round(2.5) = 3, max = 4.
  const int8_t img[4] = {1, 2, 3, 4};
  PoolParams p;
  p.filter_h = p.filter_w = 2;
  p.stride_h = p.stride_w = 2;
  int8_t avg = 0, max = 0;
  ASSERT_EQ(ref::average_pool2d(p, {1, 2, 2, 1}, img, {1, 1, 1, 1}, &avg), Status::kOk);
  ASSERT_EQ(ref::max_pool2d(p, {1, 2, 2, 1}, img, {1, 1, 1, 1}, &max), Status::kOk);
  EXPECT_EQ(avg, 3);
  EXPECT_EQ(max, 4);
  // Padding is not counted: a 3x3 window at the corner of a padded image averages 4 values.
  p.filter_h = p.filter_w = 3;
  p.stride_h = p.stride_w = 1;
  p.padding = {1, 1, 1, 1};
  int8_t padded_out[4];
  ASSERT_EQ(ref::average_pool2d(p, {1, 2, 2, 1}, img, {1, 2, 2, 1}, padded_out), Status::kOk);
  EXPECT_EQ(padded_out[0], 3);  // (1+2+3+4)/4 = 2.5 -> 3
  EXPECT_EQ(ref::max_pool2d(p, {1, 2, 2, 1}, img, {1, 3, 3, 1}, padded_out), Status::kBadShape);

  Rng rng(22);
  for (int t = 0; t < 100; ++t) {
    const Dims in{1, rng.range(2, 10), rng.range(2, 10), rng.range(1, 20)};
    PoolFloatParams fp;
    fp.filter_h = rng.range(1, std::min(3, in.h));
    fp.filter_w = rng.range(1, std::min(3, in.w));
    fp.stride_h = rng.range(1, 2);
    fp.stride_w = rng.range(1, 2);
    const Dims out{1, conv_output_extent(in.h, fp.filter_h, fp.stride_h, 1, 0, 0),
                   conv_output_extent(in.w, fp.filter_w, fp.stride_w, 1, 0, 0), in.c};
    const TensorQuant q{rng.uniform(0.01f, 0.1f), rng.zero_point()};
    auto x = rng.int8s(static_cast<size_t>(in.elements()));
    const auto xf = dequantized(x, q);
    std::vector<float> af(static_cast<size_t>(out.elements())), mf(af.size());
    std::vector<int8_t> a(af.size()), m(af.size()), a2(af.size()), m2(af.size());
    PoolParams ip;
    ip.filter_h = fp.filter_h;
    ip.filter_w = fp.filter_w;
    ip.stride_h = fp.stride_h;
    ip.stride_w = fp.stride_w;
    ASSERT_EQ(ref_float::average_pool2d(fp, in, xf.data(), out, af.data()), Status::kOk);
    ASSERT_EQ(ref_float::max_pool2d(fp, in, xf.data(), out, mf.data()), Status::kOk);
    ASSERT_EQ(ref::average_pool2d(ip, in, x.data(), out, a.data()), Status::kOk);
    ASSERT_EQ(ref::max_pool2d(ip, in, x.data(), out, m.data()), Status::kOk);
    ASSERT_EQ(opt::average_pool2d(ip, in, x.data(), out, a2.data()), Status::kOk);
    ASSERT_EQ(opt::max_pool2d(ip, in, x.data(), out, m2.data()), Status::kOk);
    EXPECT_EQ(a, a2);
    EXPECT_EQ(m, m2);
    for (size_t i = 0; i < af.size(); ++i) {
      EXPECT_NEAR(dequantize_value(a[i], q), af[i], 0.51f * q.scale);
      EXPECT_FLOAT_EQ(dequantize_value(m[i], q), mf[i]);
    }
  }
}

TEST(Mean, GlobalAverageRequantizes) {
  Rng rng(23);
  for (int t = 0; t < 100; ++t) {
    const Dims in{1, rng.range(1, 8), rng.range(1, 8), rng.range(1, 32)};
    const TensorQuant qi{rng.uniform(0.01f, 0.1f), rng.zero_point()};
    const TensorQuant qo{rng.uniform(0.005f, 0.05f), rng.zero_point()};
    auto x = rng.int8s(static_cast<size_t>(in.elements()));
    const auto xf = dequantized(x, qi);
    std::vector<float> mf(static_cast<size_t>(in.c));
    std::vector<int8_t> m(mf.size()), m2(mf.size());
    ASSERT_EQ(ref_float::mean_hw(in, xf.data(), mf.data()), Status::kOk);
    const auto p = make_mean_params(qi, qo, in.h * in.w);
    ASSERT_EQ(ref::mean_hw(p, in, x.data(), m.data()), Status::kOk);
    ASSERT_EQ(opt::mean_hw(p, in, x.data(), m2.data()), Status::kOk);
    EXPECT_EQ(m, m2);
    for (size_t i = 0; i < mf.size(); ++i) {
      const float expected = std::min(std::max(mf[i], qo.scale * (-128 - qo.zero_point)),
                                      qo.scale * (127 - qo.zero_point));
      // TFLite's two-step rounding (high multiply, then shift) can add half a step.
      EXPECT_NEAR(dequantize_value(m[i], qo), expected, 1.01f * qo.scale);
    }
  }
}

TEST(Activations, SoftmaxLogisticTanhAgainstFloat) {
  Rng rng(24);
  for (int t = 0; t < 50; ++t) {
    const TensorQuant qi{rng.uniform(0.02f, 0.2f), rng.zero_point()};
    const int32_t depth = rng.range(2, 40);
    auto x = rng.int8s(static_cast<size_t>(depth * 2));
    const auto xf = dequantized(x, qi);
    std::vector<float> sf(xf.size());
    ASSERT_EQ(ref_float::softmax(1.0f, 2, depth, xf.data(), sf.data()), Status::kOk);
    uint32_t table[256];
    build_softmax_table(qi.scale, 1.0f, table);
    std::vector<int8_t> s(x.size()), s2(x.size());
    ASSERT_EQ(ref::softmax(table, 2, depth, x.data(), s.data()), Status::kOk);
    ASSERT_EQ(opt::softmax(table, 2, depth, x.data(), s2.data()), Status::kOk);
    EXPECT_EQ(s, s2);
    const TensorQuant qs{1.0f / 256.0f, -128};
    for (size_t i = 0; i < sf.size(); ++i) {
      // Table rounding (Q16) plus output rounding: within two 1/256 steps.
      EXPECT_NEAR(dequantize_value(s[i], qs), std::min(sf[i], 255.0f / 256.0f), 2.0f / 256.0f) << i;
    }

    int8_t logistic[256], tanh_table[256];
    build_logistic_table(qi, qs, logistic);
    build_tanh_table(qi, {1.0f / 128.0f, 0}, tanh_table);
    std::vector<int8_t> l(x.size()), th(x.size());
    std::vector<float> lf(x.size()), tf(x.size());
    ASSERT_EQ(ref::lookup(logistic, static_cast<int64_t>(x.size()), x.data(), l.data()),
              Status::kOk);
    ASSERT_EQ(opt::lookup(tanh_table, static_cast<int64_t>(x.size()), x.data(), th.data()),
              Status::kOk);
    ref_float::logistic(static_cast<int64_t>(x.size()), xf.data(), lf.data());
    ref_float::tanh(static_cast<int64_t>(x.size()), xf.data(), tf.data());
    for (size_t i = 0; i < x.size(); ++i) {
      // Against the float value clamped to what the output can represent.
      EXPECT_NEAR(dequantize_value(l[i], qs), std::min(lf[i], 255.0f / 256.0f), 0.51f / 256.0f);
      EXPECT_NEAR(dequantize_value(th[i], {1.0f / 128.0f, 0}), std::min(tf[i], 127.0f / 128.0f),
                  0.51f / 128.0f + 1e-6f);
    }
  }
}

TEST(DataMovement, ConcatenationAndPad) {
  // Channels: [1 2] ++ [3] -> [1 2 3] per pixel.
  const int8_t a[4] = {1, 2, 10, 20};  // 1x1x2x2
  const int8_t b[2] = {3, 30};         // 1x1x2x1
  const Dims dims[2] = {{1, 1, 2, 2}, {1, 1, 2, 1}};
  const void* inputs[2] = {a, b};
  int8_t out[6];
  ASSERT_EQ(concatenation(3, 2, dims, inputs, 1, {1, 1, 2, 3}, out), Status::kOk);
  EXPECT_EQ(std::vector<int8_t>(out, out + 6), (std::vector<int8_t>{1, 2, 3, 10, 20, 30}));
  EXPECT_EQ(concatenation(3, 2, dims, inputs, 1, {1, 1, 2, 4}, out), Status::kBadShape);
  // Height concatenation of float tensors.
  const float fa[2] = {1.5f, 2.5f}, fb[2] = {3.5f, 4.5f};
  const Dims fd[2] = {{1, 1, 1, 2}, {1, 1, 1, 2}};
  const void* fin[2] = {fa, fb};
  float fout[4];
  ASSERT_EQ(concatenation(1, 2, fd, fin, 4, {1, 2, 1, 2}, fout), Status::kOk);
  EXPECT_EQ(fout[2], 3.5f);

  // Pad a 1x1x1x1 image by one pixel on each side with the zero point -5.
  const int8_t one = 7, zp = -5;
  PadParams p;
  p.before[1] = p.before[2] = p.after[1] = p.after[2] = 1;
  int8_t padded[9];
  ASSERT_EQ(pad(p, {1, 1, 1, 1}, &one, 1, &zp, {1, 3, 3, 1}, padded), Status::kOk);
  EXPECT_EQ(std::vector<int8_t>(padded, padded + 9),
            (std::vector<int8_t>{-5, -5, -5, -5, 7, -5, -5, -5, -5}));
  EXPECT_EQ(pad(p, {1, 1, 1, 1}, &one, 1, &zp, {1, 2, 3, 1}, padded), Status::kBadShape);
}

TEST(QuantizeDequantize, RoundTripWithinHalfAStep) {
  const TensorQuant q{0.05f, 10};
  const float in[5] = {-10.0f, -1.0f, 0.0f, 0.26f, 100.0f};
  int8_t qv[5];
  float back[5];
  ASSERT_EQ(quantize(q, 5, in, qv), Status::kOk);
  ASSERT_EQ(dequantize(q, 5, qv, back), Status::kOk);
  EXPECT_EQ(qv[0], -128);  // saturates
  EXPECT_EQ(qv[2], 10);    // zero is exact
  EXPECT_EQ(qv[4], 127);
  EXPECT_NEAR(back[1], -1.0f, 0.025f);
  EXPECT_NEAR(back[3], 0.26f, 0.025f);
  EXPECT_EQ(quantize({0.0f, 0}, 5, in, qv), Status::kBadParams);
}

}  // namespace
