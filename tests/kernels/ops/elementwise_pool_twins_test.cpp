// Add, Mul, MaxPool2D, AveragePool2D and Mean: the optimized kernels (AVX2 on this host)
// and their portable build are bit-exact with the reference on randomized sizes (vector
// bodies and scalar tails), quantizations with extreme zero points, broadcasts, windows
// clipped by padding, windows of up to 256 taps (int16 sums) and beyond (fallback), and
// inputs saturated at -128 or 127.
#include <gtest/gtest.h>

#include "random_tensors.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/pooling.h"

using namespace tinyfleet::kernels;
using tinyfleet::kernels::testing::Rng;

namespace {

// Random int8 values, or one extreme value throughout (one case in four).
std::vector<int8_t> values(Rng& rng, size_t n) {
  const int32_t pick = rng.range(0, 7);
  if (pick == 0) return std::vector<int8_t>(n, 127);
  if (pick == 1) return std::vector<int8_t>(n, -128);
  return rng.int8s(n);
}

TEST(ElementwiseTwins, AddAndMulAreBitExactWithReference) {
  Rng rng(31);
  for (int t = 0; t < 400; ++t) {
    const int64_t n = rng.range(1, 200);
    const bool broadcast = rng.range(0, 3) == 0;
    const TensorQuant a{rng.uniform(0.002f, 0.2f), rng.zero_point()};
    const TensorQuant b{rng.uniform(0.002f, 0.2f), rng.zero_point()};
    const TensorQuant o{rng.uniform(0.002f, 0.4f), rng.zero_point()};
    const ActivationRange act = rng.activation();
    const auto x = values(rng, static_cast<size_t>(n));
    const auto y = values(rng, broadcast ? 1 : static_cast<size_t>(n));
    const int64_t n2 = broadcast ? 1 : n;
    std::vector<int8_t> ref(static_cast<size_t>(n)), opt(ref.size(), 1), scalar(ref.size(), 2);
    const auto ap = make_add_params(a, b, o, act);
    ASSERT_EQ(ref::add(ap, n, x.data(), n2, y.data(), ref.data()), Status::kOk);
    ASSERT_EQ(opt::add(ap, n, x.data(), n2, y.data(), opt.data()), Status::kOk);
    ASSERT_EQ(opt_scalar::add(ap, n, x.data(), n2, y.data(), scalar.data()), Status::kOk);
    ASSERT_EQ(opt, ref) << "add case " << t;
    ASSERT_EQ(scalar, ref) << "add case " << t;
    const auto mp = make_mul_params(a, b, o, act);
    ASSERT_EQ(ref::mul(mp, n, x.data(), n2, y.data(), ref.data()), Status::kOk);
    ASSERT_EQ(opt::mul(mp, n, x.data(), n2, y.data(), opt.data()), Status::kOk);
    ASSERT_EQ(opt_scalar::mul(mp, n, x.data(), n2, y.data(), scalar.data()), Status::kOk);
    ASSERT_EQ(opt, ref) << "mul case " << t;
    ASSERT_EQ(scalar, ref) << "mul case " << t;
  }
  // A size mismatch is refused by every twin.
  const AddParams ap;
  const std::vector<int8_t> x(8);
  std::vector<int8_t> y(8);
  EXPECT_EQ(opt::add(ap, 8, x.data(), 3, x.data(), y.data()), Status::kBadShape);
  EXPECT_EQ(ref::add(ap, 8, x.data(), 3, x.data(), y.data()), Status::kBadShape);
}

TEST(PoolTwins, MaxAndAverageAreBitExactWithReference) {
  Rng rng(32);
  for (int t = 0; t < 400; ++t) {
    PoolParams p;
    const bool global = t % 10 == 9;  // a whole image: 256 taps or beyond
    const Dims in{rng.range(1, 2), global ? rng.range(15, 17) : rng.range(1, 12),
                  global ? 16 : rng.range(1, 12),
                  rng.range(0, 1) ? 8 * rng.range(1, 6) : rng.range(1, 70)};
    p.filter_h = global ? in.h : rng.range(1, 5);
    p.filter_w = global ? in.w : rng.range(1, 5);
    p.stride_h = rng.range(1, 3);
    p.stride_w = rng.range(1, 3);
    p.padding = {rng.range(0, p.filter_h - 1), rng.range(0, p.filter_w - 1),
                 rng.range(0, p.filter_h - 1), rng.range(0, p.filter_w - 1)};
    if (global) p.padding = {};
    p.activation = rng.activation();
    const Dims out{
        in.n, conv_output_extent(in.h, p.filter_h, p.stride_h, 1, p.padding.top, p.padding.bottom),
        conv_output_extent(in.w, p.filter_w, p.stride_w, 1, p.padding.left, p.padding.right), in.c};
    if (out.h <= 0 || out.w <= 0) continue;
    const auto x = values(rng, static_cast<size_t>(in.elements()));
    const size_t n = static_cast<size_t>(out.elements());
    for (int kind = 0; kind < 2; ++kind) {
      auto* r = kind ? &ref::average_pool2d : &ref::max_pool2d;
      auto* o = kind ? &opt::average_pool2d : &opt::max_pool2d;
      auto* s = kind ? &opt_scalar::average_pool2d : &opt_scalar::max_pool2d;
      std::vector<int8_t> ref(n), opt(n, 1), scalar(n, 2);
      ASSERT_EQ(r(p, in, x.data(), out, ref.data()), Status::kOk);
      ASSERT_EQ(o(p, in, x.data(), out, opt.data()), Status::kOk);
      ASSERT_EQ(s(p, in, x.data(), out, scalar.data()), Status::kOk);
      ASSERT_EQ(opt, ref) << (kind ? "average" : "max") << " case " << t;
      ASSERT_EQ(scalar, ref) << (kind ? "average" : "max") << " case " << t;
    }
  }
}

TEST(PoolTwins, MeanIsBitExactWithReference) {
  Rng rng(33);
  for (int t = 0; t < 300; ++t) {
    const Dims in{rng.range(1, 2), rng.range(1, 12), rng.range(1, 12), rng.range(1, 70)};
    const TensorQuant qi{rng.uniform(0.01f, 0.1f), rng.zero_point()};
    const TensorQuant qo{rng.uniform(0.001f, 0.05f), rng.zero_point()};
    const auto p = make_mean_params(qi, qo, in.h * in.w);
    const auto x = values(rng, static_cast<size_t>(in.elements()));
    const size_t n = static_cast<size_t>(in.n * in.c);
    std::vector<int8_t> ref(n), opt(n, 1), scalar(n, 2);
    ASSERT_EQ(ref::mean_hw(p, in, x.data(), ref.data()), Status::kOk);
    ASSERT_EQ(opt::mean_hw(p, in, x.data(), opt.data()), Status::kOk);
    ASSERT_EQ(opt_scalar::mean_hw(p, in, x.data(), scalar.data()), Status::kOk);
    ASSERT_EQ(opt, ref) << "case " << t;
    ASSERT_EQ(scalar, ref) << "case " << t;
  }
}

}  // namespace
