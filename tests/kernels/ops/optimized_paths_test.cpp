// The optimized kernels' special paths against the reference: the MLPerf Tiny layer
// shapes the benchmark times (packed-weight Conv2D and its fallback for large filters,
// the depthwise register blocks), the vector requantization at the int32 extremes,
// and activation ranges outside int8 refused by every twin alike.
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <utility>

#include "random_conv.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"
#include "tinyfleet/kernels/ops/fully_connected.h"

using namespace tinyfleet::kernels;
using tinyfleet::kernels::testing::ConvCase;
using tinyfleet::kernels::testing::random_conv;
using tinyfleet::kernels::testing::Rng;

namespace {

struct Layer {
  bool depthwise;
  int32_t h, w, c, kh, kw, stride, out_c;
  Padding pad;
};

// The shapes of bench/kernels/ops/conv_layers_bench.cpp.
const Layer kLayers[] = {
    {false, 49, 10, 1, 10, 4, 2, 64, {4, 1, 5, 1}},
    {true, 25, 5, 64, 3, 3, 1, 64, {1, 1, 1, 1}},
    {false, 25, 5, 64, 1, 1, 1, 64, {}},
    {false, 32, 32, 3, 3, 3, 1, 16, {1, 1, 1, 1}},
    {false, 32, 32, 16, 3, 3, 1, 16, {1, 1, 1, 1}},
    {false, 16, 16, 32, 3, 3, 1, 32, {1, 1, 1, 1}},
    {false, 8, 8, 64, 3, 3, 1, 64, {1, 1, 1, 1}},
    {false, 96, 96, 3, 3, 3, 2, 8, {0, 0, 1, 1}},
    {true, 48, 48, 8, 3, 3, 1, 8, {1, 1, 1, 1}},
    {false, 48, 48, 8, 1, 1, 1, 16, {}},
    {true, 6, 6, 128, 3, 3, 1, 128, {1, 1, 1, 1}},
    {false, 6, 6, 128, 1, 1, 1, 256, {}},
};

TEST(OptimizedPaths, MlperfTinyLayersAreBitExactWithReference) {
  Rng rng(21);
  for (const Layer& l : kLayers) {
    Conv2DParams p;
    p.stride_h = p.stride_w = l.stride;
    p.padding = l.pad;
    p.input_offset = -rng.zero_point();
    p.output_offset = rng.zero_point();
    p.activation = rng.activation();
    const Dims in{1, l.h, l.w, l.c};
    const Dims f = l.depthwise ? Dims{1, l.kh, l.kw, l.c} : Dims{l.out_c, l.kh, l.kw, l.c};
    const Dims out{1, conv_output_extent(l.h, l.kh, l.stride, 1, l.pad.top, l.pad.bottom),
                   conv_output_extent(l.w, l.kw, l.stride, 1, l.pad.left, l.pad.right), l.out_c};
    const auto input = rng.int8s(static_cast<size_t>(in.elements()));
    const auto filter = rng.int8s(static_cast<size_t>(f.elements()));
    const auto bias = rng.biases(static_cast<size_t>(l.out_c), 1 << 14);
    std::vector<int32_t> mult, shift;
    rng.requant(static_cast<size_t>(l.out_c), &mult, &shift);
    const PerChannelRequant rq{mult.data(), shift.data()};
    const size_t n = static_cast<size_t>(out.elements());
    std::vector<int8_t> ref(n), opt(n, 1);
    if (l.depthwise) {
      DepthwiseParams dp;
      static_cast<Conv2DParams&>(dp) = p;
      ASSERT_EQ(ref::depthwise_conv2d(dp, rq, in, input.data(), f, filter.data(), bias.data(), out,
                                      ref.data()),
                Status::kOk);
      ASSERT_EQ(opt::depthwise_conv2d(dp, rq, in, input.data(), f, filter.data(), bias.data(), out,
                                      opt.data()),
                Status::kOk);
    } else {
      std::vector<uint8_t> scratch(conv2d_scratch_size(f));
      ASSERT_EQ(ref::conv2d(p, rq, in, input.data(), f, filter.data(), bias.data(), out, ref.data(),
                            nullptr, 0),
                Status::kOk);
      ASSERT_EQ(opt::conv2d(p, rq, in, input.data(), f, filter.data(), bias.data(), out, opt.data(),
                            scratch.data(), scratch.size()),
                Status::kOk);
    }
    ASSERT_EQ(opt, ref) << "layer " << l.h << "x" << l.w << "x" << l.c << " -> " << l.out_c;
  }
}

// Channel counts chosen for the packed paths and their fallbacks: depthwise 8 mod 16
// (two pixels share a unit), multiples of 16, and more than 512 channels; Conv2D with
// more than 256 filters or receptive fields over 2048 values.
TEST(OptimizedPaths, PackedPathsAndTheirFallbacksAreBitExact) {
  Rng rng(23);
  auto check = [&](ConvCase c, bool depthwise) {
    const size_t n = static_cast<size_t>(c.out.elements());
    std::vector<int8_t> ref(n), opt(n, 1), scalar(n, 2);
    const PerChannelRequant rq{c.mult.data(), c.shift.data()};
    if (depthwise) {
      DepthwiseParams p;
      static_cast<Conv2DParams&>(p) = c.p;
      for (auto* fn :
           {&ref::depthwise_conv2d, &opt::depthwise_conv2d, &opt_scalar::depthwise_conv2d}) {
        auto& y = fn == &ref::depthwise_conv2d ? ref : fn == &opt::depthwise_conv2d ? opt : scalar;
        ASSERT_EQ(
            fn(p, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(), c.out, y.data()),
            Status::kOk);
      }
    } else {
      std::vector<uint8_t> scratch(conv2d_scratch_size(c.f));
      ASSERT_EQ(ref::conv2d(c.p, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(),
                            c.out, ref.data(), nullptr, 0),
                Status::kOk);
      ASSERT_EQ(opt::conv2d(c.p, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(),
                            c.out, opt.data(), scratch.data(), scratch.size()),
                Status::kOk);
      ASSERT_EQ(
          opt_scalar::conv2d(c.p, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(),
                             c.out, scalar.data(), scratch.data(), scratch.size()),
          Status::kOk);
    }
    EXPECT_EQ(opt, ref) << c.in.c << " channels, " << c.f.h << "x" << c.f.w;
    EXPECT_EQ(scalar, ref);
  };
  for (const int32_t channels : {8, 16, 24, 40, 64, 520}) {
    for (int t = 0; t < 8; ++t) {
      auto c = random_conv(rng, true, 1, channels);
      if (c.out.h > 0 && c.out.w > 0) check(c, true);
    }
  }
  for (const auto& [channels, filters] : {std::pair{3, 8}, {8, 16}, {5, 264}, {240, 9}}) {
    for (int t = 0; t < 6; ++t) {
      auto c = random_conv(rng, false, 1, channels, filters);
      if (c.out.h > 0 && c.out.w > 0) check(c, false);
    }
  }
}

// FullyConnected with zero weights computes requantize(bias): the 8-lane requantization
// against the scalar one on accumulators at the int32 extremes and on exact halves.
TEST(OptimizedPaths, VectorRequantizationMatchesScalarAtTheExtremes) {
  Rng rng(22);
  const int32_t kOut = 8 * 64;
  std::vector<int32_t> bias(kOut), mult(kOut), shift(kOut);
  const int32_t extremes[] = {INT32_MIN, INT32_MIN + 1, INT32_MAX,  INT32_MAX - 1, 0,         1,
                              -1,        1 << 30,       -(1 << 30), 3 << 20,       -(3 << 20)};
  for (int32_t i = 0; i < kOut; ++i) {
    const int32_t kind = i % 3;
    if (kind == 0) {  // an extreme accumulator, scaled down far enough to land in int8
      bias[i] = extremes[rng.range(0, 10)];
      quantize_multiplier(std::ldexp(rng.uniform(0.5f, 1.0f), -rng.range(24, 31)), &mult[i],
                          &shift[i]);
    } else if (kind == 1) {  // an exact half: (2k + 1) * 2^(e-1) / 2^e
      const int32_t e = rng.range(1, 20);
      bias[i] = (2 * rng.range(-100, 100) + 1) * (1 << (e - 1));
      mult[i] = 1 << 30;  // 0.5, so the shift is e - 1
      shift[i] = -(e - 1);
    } else {  // left shifts on accumulators small enough not to overflow
      bias[i] = rng.range(-(1 << 20), 1 << 20);
      quantize_multiplier(std::ldexp(rng.uniform(0.5f, 1.0f), rng.range(-8, 2)), &mult[i],
                          &shift[i]);
      if (shift[i] > 0) bias[i] >>= shift[i] + 1;
    }
  }
  FullyConnectedParams p;
  p.input_offset = 5;
  p.output_offset = -3;
  const std::vector<int8_t> x{7}, w(kOut, 0);
  const PerChannelRequant rq{mult.data(), shift.data()};
  std::vector<int8_t> ref(kOut), opt(kOut, 1);
  std::vector<uint8_t> scratch(fully_connected_scratch_size(1));
  ASSERT_EQ(ref::fully_connected(p, rq, 1, 1, x.data(), kOut, w.data(), bias.data(), ref.data(),
                                 nullptr, 0),
            Status::kOk);
  ASSERT_EQ(opt::fully_connected(p, rq, 1, 1, x.data(), kOut, w.data(), bias.data(), opt.data(),
                                 scratch.data(), scratch.size()),
            Status::kOk);
  int inside = 0;
  for (int32_t i = 0; i < kOut; ++i) {
    EXPECT_EQ(opt[i], ref[i]) << "bias " << bias[i] << " multiplier " << mult[i] << " shift "
                              << shift[i];
    inside += ref[i] > -128 && ref[i] < 127;
  }
  EXPECT_GT(inside, kOut / 2);  // most values land inside int8: the rounding is exercised
}

TEST(OptimizedPaths, ActivationRangesOutsideInt8AreRefused) {
  Conv2DParams p;
  const Dims in{1, 2, 2, 8}, f{8, 1, 1, 8}, out{1, 2, 2, 8};
  const std::vector<int8_t> x(32, 1), w(64, 1);
  std::vector<int8_t> y(32);
  const std::vector<int32_t> mult(8, 1 << 30), shift(8, 0);
  const PerChannelRequant rq{mult.data(), shift.data()};
  std::vector<uint8_t> scratch(conv2d_scratch_size(f));
  DepthwiseParams dp;
  FullyConnectedParams fp;
  for (const ActivationRange a :
       {ActivationRange{-129, 0}, ActivationRange{0, 128}, ActivationRange{5, 4}}) {
    p.activation = dp.activation = fp.activation = a;
    EXPECT_EQ(ref::conv2d(p, rq, in, x.data(), f, w.data(), nullptr, out, y.data(), nullptr, 0),
              Status::kBadShape);
    EXPECT_EQ(opt::conv2d(p, rq, in, x.data(), f, w.data(), nullptr, out, y.data(), scratch.data(),
                          scratch.size()),
              Status::kBadShape);
    const Dims dwf{1, 1, 1, 8};
    EXPECT_EQ(ref::depthwise_conv2d(dp, rq, in, x.data(), dwf, w.data(), nullptr, out, y.data()),
              Status::kBadShape);
    EXPECT_EQ(opt::depthwise_conv2d(dp, rq, in, x.data(), dwf, w.data(), nullptr, out, y.data()),
              Status::kBadShape);
    EXPECT_EQ(
        ref::fully_connected(fp, rq, 1, 8, x.data(), 8, w.data(), nullptr, y.data(), nullptr, 0),
        Status::kBadShape);
    EXPECT_EQ(opt::fully_connected(fp, rq, 1, 8, x.data(), 8, w.data(), nullptr, y.data(),
                                   scratch.data(), scratch.size()),
              Status::kBadShape);
  }
}

}  // namespace
