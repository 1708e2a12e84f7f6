// The in-place contract (tinyfleet/kernels/ops/in_place.h): every row-sequential kernel,
// reference and optimized, gives the same output when its output starts
// `row_overlap_distance` bytes before its input in one buffer as when the two are apart;
// element-wise kernels may write over an input of the same shape. The memory planner
// relies on this to overlap a tensor with the one it is computed from.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>

#include "random_conv.h"
#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/in_place.h"
#include "tinyfleet/kernels/ops/pooling.h"

using namespace tinyfleet::kernels;
using tinyfleet::kernels::testing::ConvCase;
using tinyfleet::kernels::testing::random_conv;
using tinyfleet::kernels::testing::Rng;

namespace {

using Kernel = std::function<Status(const int8_t* input, int8_t* output)>;

// Runs `kernel` apart and overlapped (output at 0, input at `distance` in one buffer, and
// at a larger distance that is no multiple of a pixel: any larger one is safe too) and
// returns whether the outputs agree.
::testing::AssertionResult same_in_place(const Kernel& kernel, const std::vector<int8_t>& input,
                                         size_t out_bytes, int64_t distance) {
  std::vector<int8_t> apart(out_bytes, 3);
  if (kernel(input.data(), apart.data()) != Status::kOk) {
    return ::testing::AssertionFailure() << "kernel failed apart";
  }
  for (const size_t d : {static_cast<size_t>(distance), static_cast<size_t>(distance) + 5}) {
    std::vector<int8_t> shared(std::max(d + input.size(), out_bytes), 5);
    std::memcpy(shared.data() + d, input.data(), input.size());
    if (kernel(shared.data() + d, shared.data()) != Status::kOk) {
      return ::testing::AssertionFailure() << "kernel failed overlapped";
    }
    for (size_t i = 0; i < out_bytes; ++i) {
      if (shared[i] != apart[i]) {
        return ::testing::AssertionFailure()
               << "byte " << i << " of " << out_bytes << " differs at distance " << d;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

int64_t distance_for(const ConvCase& c) {
  return overlap_distance(c.in, c.out,
                          {c.p.stride_h, c.p.stride_w, c.p.padding.top, c.p.padding.left}, 1);
}

ConvCase batch_one(Rng& rng, bool depthwise, int32_t multiplier = 1, int32_t channels = 0) {
  for (;;) {
    auto c = random_conv(rng, depthwise, multiplier, channels);
    if (c.out.h <= 0 || c.out.w <= 0) continue;
    c.in.n = c.out.n = 1;
    c.input.resize(static_cast<size_t>(c.in.elements()));
    return c;
  }
}

}  // namespace

TEST(InPlace, DistanceByHand) {
  const Dims d{1, 8, 8, 16};
  // 3x3, stride 1, pad 1: output pixel (1, 7) ends at pixel 16 and input pixel (0, 6) is
  // still needed: 10 pixels.
  EXPECT_EQ(overlap_distance(d, d, {1, 1, 1, 1}, 1), 10 * 16);
  // 1x1, stride 1: each output pixel only has to end before its own input pixel.
  EXPECT_EQ(overlap_distance(d, d, {1, 1, 0, 0}, 1), 16);
  EXPECT_EQ(overlap_distance(d, d, {1, 1, 0, 0}, 4), 64);
  // 1x1, stride 2, 16 -> 32 channels: output pixel (0, 3) ends at 128 B, input pixel
  // (0, 6) starts at 96 B.
  EXPECT_EQ(overlap_distance(d, {1, 4, 4, 32}, {2, 2, 0, 0}, 1), 32);
  EXPECT_EQ(overlap_distance({2, 8, 8, 16}, d, {1, 1, 1, 1}, 1), -1);
}

TEST(InPlace, ConvolutionKernelsHonourTheOverlapDistance) {
  Rng rng(41);
  for (int t = 0; t < 300; ++t) {
    auto c = batch_one(rng, false);
    std::vector<uint8_t> scratch(conv2d_scratch_size(c.f));
    PerChannelRequant rq{c.mult.data(), c.shift.data()};
    const size_t out_bytes = static_cast<size_t>(c.out.elements());
    for (auto* fn : {&ref::conv2d, &opt::conv2d, &opt_scalar::conv2d}) {
      Kernel k = [&](const int8_t* in, int8_t* out) {
        return fn(c.p, rq, c.in, in, c.f, c.filter.data(), c.bias.data(), c.out, out,
                  scratch.data(), scratch.size());
      };
      ASSERT_TRUE(same_in_place(k, c.input, out_bytes, distance_for(c))) << "case " << t;
    }
  }
}

TEST(InPlace, DepthwiseKernelsHonourTheOverlapDistance) {
  Rng rng(42);
  for (int t = 0; t < 300; ++t) {
    const int32_t mult = t % 4 == 3 ? rng.range(2, 3) : 1;
    // Every other case with a multiple of 8 channels: the packed AVX2 path's layers.
    auto c = batch_one(rng, true, mult, t % 2 == 0 ? 8 * rng.range(1, 5) : 0);
    DepthwiseParams p;
    static_cast<Conv2DParams&>(p) = c.p;
    p.depth_multiplier = mult;
    PerChannelRequant rq{c.mult.data(), c.shift.data()};
    const size_t out_bytes = static_cast<size_t>(c.out.elements());
    for (auto* fn :
         {&ref::depthwise_conv2d, &opt::depthwise_conv2d, &opt_scalar::depthwise_conv2d}) {
      Kernel k = [&](const int8_t* in, int8_t* out) {
        return fn(p, rq, c.in, in, c.f, c.filter.data(), c.bias.data(), c.out, out);
      };
      ASSERT_TRUE(same_in_place(k, c.input, out_bytes, distance_for(c))) << "case " << t;
    }
  }
}

TEST(InPlace, PoolingKernelsHonourTheOverlapDistance) {
  Rng rng(43);
  for (int t = 0; t < 300; ++t) {
    auto c = batch_one(rng, true);
    PoolParams p;
    p.filter_h = c.f.h;
    p.filter_w = c.f.w;
    p.stride_h = c.p.stride_h;
    p.stride_w = c.p.stride_w;
    p.padding = c.p.padding;
    p.activation = rng.activation();
    // Pooling has no dilation: recompute the output extent without it.
    c.out.h = conv_output_extent(c.in.h, c.f.h, p.stride_h, 1, p.padding.top, p.padding.bottom);
    c.out.w = conv_output_extent(c.in.w, c.f.w, p.stride_w, 1, p.padding.left, p.padding.right);
    c.out.c = c.in.c;
    if (c.out.h <= 0 || c.out.w <= 0 || p.padding.top >= c.f.h || p.padding.bottom >= c.f.h ||
        p.padding.left >= c.f.w || p.padding.right >= c.f.w) {
      continue;  // a window entirely in the padding is refused by the kernels
    }
    const size_t out_bytes = static_cast<size_t>(c.out.elements());
    for (auto* fn :
         {&ref::average_pool2d, &opt::average_pool2d, &ref::max_pool2d, &opt::max_pool2d}) {
      Kernel k = [&](const int8_t* in, int8_t* out) { return fn(p, c.in, in, c.out, out); };
      ASSERT_TRUE(same_in_place(k, c.input, out_bytes, distance_for(c))) << "case " << t;
    }
  }
}

TEST(InPlace, ElementwiseKernelsMayWriteOverEitherInput) {
  Rng rng(44);
  for (int t = 0; t < 100; ++t) {
    const int64_t n = rng.range(1, 300);
    auto a = rng.int8s(static_cast<size_t>(n)), b = rng.int8s(static_cast<size_t>(n));
    const TensorQuant qa{rng.uniform(0.01f, 0.5f), rng.zero_point()};
    const TensorQuant qb{rng.uniform(0.01f, 0.5f), rng.zero_point()};
    const TensorQuant qo{rng.uniform(0.02f, 1.0f), rng.zero_point()};
    const auto ap = make_add_params(qa, qb, qo, rng.activation());
    const auto mp = make_mul_params(qa, qb, qo, rng.activation());
    int8_t table[256];
    for (auto& v : table) v = static_cast<int8_t>(rng.range(-128, 127));
    const size_t bytes = static_cast<size_t>(n);
    for (auto* fn : {&ref::add, &opt::add}) {
      Kernel over_a = [&](const int8_t* in, int8_t* out) {
        return fn(ap, n, in, n, b.data(), out);
      };
      Kernel over_b = [&](const int8_t* in, int8_t* out) {
        return fn(ap, n, a.data(), n, in, out);
      };
      ASSERT_TRUE(same_in_place(over_a, a, bytes, 0)) << "add case " << t;
      ASSERT_TRUE(same_in_place(over_b, b, bytes, 0)) << "add case " << t;
    }
    for (auto* fn : {&ref::mul, &opt::mul}) {
      Kernel over_a = [&](const int8_t* in, int8_t* out) {
        return fn(mp, n, in, n, b.data(), out);
      };
      ASSERT_TRUE(same_in_place(over_a, a, bytes, 0)) << "mul case " << t;
    }
    for (auto* fn : {&ref::lookup, &opt::lookup}) {
      Kernel k = [&](const int8_t* in, int8_t* out) { return fn(table, n, in, out); };
      ASSERT_TRUE(same_in_place(k, a, bytes, 0)) << "lookup case " << t;
    }
  }
}
