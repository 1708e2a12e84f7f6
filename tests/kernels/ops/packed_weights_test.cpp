// Weights packed once (packed_weights.h) against the reference: Conv2D and
// DepthwiseConv2D on randomized shapes (odd channel counts, strides, dilation, padding,
// extreme zero points, batches), packed by opt:: and opt_scalar:: (which packs nothing
// and forwards), and a buffer packed for another layer refused.
#include <gtest/gtest.h>

#include "random_conv.h"
#include "tinyfleet/kernels/ops/packed_weights.h"

using namespace tinyfleet::kernels;
using tinyfleet::kernels::testing::ConvCase;
using tinyfleet::kernels::testing::random_conv;
using tinyfleet::kernels::testing::Rng;

namespace {

// The layer run by ref:: and by a twin's *_prepacked with the weights it packed (an odd
// start, so the packing aligns inside the buffer); the twin's output, or empty on error.
template <typename Pack, typename Run>
std::vector<int8_t> run_packed(const ConvCase& c, size_t size, Pack pack, Run run) {
  const PerChannelRequant rq{c.mult.data(), c.shift.data()};
  std::vector<unsigned char> buffer(size + 1);
  const void* packed = nullptr;
  if (size > 0) {
    if (pack(rq, buffer.data() + 1, size) != Status::kOk) return {};
    packed = buffer.data() + 1;
  }
  std::vector<int8_t> y(static_cast<size_t>(c.out.elements()), 3);
  return run(rq, packed, y.data()) == Status::kOk ? y : std::vector<int8_t>{};
}

std::vector<int8_t> reference(const ConvCase& c, bool depthwise, int32_t multiplier) {
  const PerChannelRequant rq{c.mult.data(), c.shift.data()};
  std::vector<int8_t> y(static_cast<size_t>(c.out.elements()));
  DepthwiseParams dp;
  static_cast<Conv2DParams&>(dp) = c.p;
  dp.depth_multiplier = multiplier;
  const Status st = depthwise
                        ? ref::depthwise_conv2d(dp, rq, c.in, c.input.data(), c.f, c.filter.data(),
                                                c.bias.data(), c.out, y.data())
                        : ref::conv2d(c.p, rq, c.in, c.input.data(), c.f, c.filter.data(),
                                      c.bias.data(), c.out, y.data(), nullptr, 0);
  EXPECT_EQ(st, Status::kOk);
  return y;
}

// The twin of namespace opt:: (kScalar false) or opt_scalar:: (true).
template <bool kScalar>
std::vector<int8_t> twin_conv(const ConvCase& c) {
  std::vector<uint8_t> scratch(conv2d_scratch_size(c.f));
  const size_t size = kScalar ? opt_scalar::conv2d_packed_size(c.f) : opt::conv2d_packed_size(c.f);
  return run_packed(
      c, size,
      [&](const PerChannelRequant& rq, void* at, size_t n) {
        return (kScalar ? &opt_scalar::conv2d_pack : &opt::conv2d_pack)(rq, c.f, c.filter.data(),
                                                                        c.bias.data(), at, n);
      },
      [&](const PerChannelRequant& rq, const void* packed, int8_t* y) {
        return (kScalar ? &opt_scalar::conv2d_prepacked : &opt::conv2d_prepacked)(
            c.p, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(), c.out, y,
            scratch.data(), scratch.size(), packed);
      });
}

template <bool kScalar>
std::vector<int8_t> twin_depthwise(const ConvCase& c, int32_t multiplier) {
  DepthwiseParams dp;
  static_cast<Conv2DParams&>(dp) = c.p;
  dp.depth_multiplier = multiplier;
  const size_t size =
      kScalar ? opt_scalar::depthwise_packed_size(dp, c.f) : opt::depthwise_packed_size(dp, c.f);
  return run_packed(
      c, size,
      [&](const PerChannelRequant& rq, void* at, size_t n) {
        return (kScalar ? &opt_scalar::depthwise_pack : &opt::depthwise_pack)(
            dp, rq, c.f, c.filter.data(), c.bias.data(), at, n);
      },
      [&](const PerChannelRequant& rq, const void* packed, int8_t* y) {
        return (kScalar ? &opt_scalar::depthwise_prepacked : &opt::depthwise_prepacked)(
            dp, rq, c.in, c.input.data(), c.f, c.filter.data(), c.bias.data(), c.out, y, packed);
      });
}

// Whether opt:: runs its AVX2 build here (an x86-64 build with it, on a core with it).
bool avx2_core() {
#if defined(TINYFLEET_KERNELS_HOST_AVX2)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

// A random layer whose output is not empty.
ConvCase nonempty_conv(Rng& rng, bool depthwise, int32_t multiplier, int32_t channels,
                       int32_t filters = 0) {
  for (;;) {
    auto c = random_conv(rng, depthwise, multiplier, channels, filters);
    if (c.out.h > 0 && c.out.w > 0) return c;
  }
}

TEST(PackedWeights, Conv2DPackedOnceIsBitExactWithReference) {
  Rng rng(31);
  int packed_cases = 0;
  for (int t = 0; t < 400; ++t) {
    const int32_t channels[] = {0, 1, 3, 8, 16, 17};
    const int32_t filters[] = {0, 1, 7, 8, 9, 16, 24, 33};
    const auto c = nonempty_conv(rng, false, 1, channels[t % 6], filters[t % 8]);
    const auto want = reference(c, false, 1);
    EXPECT_EQ(twin_conv<false>(c), want) << "case " << t;
    EXPECT_EQ(twin_conv<true>(c), want) << "case " << t;
    packed_cases += opt::conv2d_packed_size(c.f) > 0;
  }
  if (avx2_core()) {
    EXPECT_GT(packed_cases, 300);  // the packed path ran, not only its fallback
  }
}

TEST(PackedWeights, DepthwisePackedOnceIsBitExactWithReference) {
  Rng rng(32);
  int packed_cases = 0;
  for (int t = 0; t < 400; ++t) {
    const int32_t channels[] = {8, 16, 24, 40, 64, 0, 3};
    const int32_t multiplier = t % 9 == 8 ? 2 : 1;
    const auto c = nonempty_conv(rng, true, multiplier, channels[t % 7]);
    const auto want = reference(c, true, multiplier);
    EXPECT_EQ(twin_depthwise<false>(c, multiplier), want) << "case " << t;
    EXPECT_EQ(twin_depthwise<true>(c, multiplier), want) << "case " << t;
    DepthwiseParams dp;
    static_cast<Conv2DParams&>(dp) = c.p;
    dp.depth_multiplier = multiplier;
    packed_cases += opt::depthwise_packed_size(dp, c.f) > 0;
  }
  if (avx2_core()) {
    EXPECT_GT(packed_cases, 150);
  }
}

// Layers whose every shift divides (-1 to -30) and whose accumulators stay within +-2^30
// take the packed depthwise path's shorter requantization (depthwise_packed.cpp,
// fast_channel); biases near that bound, multipliers anywhere in [2^30, 2^31) and
// exact halves (shift -1 rounds half of all values) must still give the reference's bytes,
// and so must the layers just past the bound (the general requantization).
TEST(PackedWeights, DepthwiseDividingRequantizationIsBitExact) {
  Rng rng(34);
  for (int t = 0; t < 400; ++t) {
    const int32_t channels[] = {8, 16, 24, 64};
    auto c = nonempty_conv(rng, true, 1, channels[t % 4]);
    const int32_t taps = c.f.h * c.f.w;
    // Bias magnitudes: small, up to the bound's edge, or beyond it.
    const int32_t reach = 128 * 128 * taps;
    const int32_t magnitude = t % 3 == 0 ? 1 << 12 : (1 << 30) - reach + (t % 3 == 2 ? 4096 : 0);
    c.bias = rng.biases(c.mult.size(), magnitude);
    for (size_t i = 0; i < c.mult.size(); ++i) {
      c.mult[i] = rng.range(1 << 30, 0x7fffffff);
      c.shift[i] = t % 5 == 0 ? -1 : rng.range(-30, -1);
    }
    const auto want = reference(c, true, 1);
    EXPECT_EQ(twin_depthwise<false>(c, 1), want) << "case " << t;
    EXPECT_EQ(twin_depthwise<true>(c, 1), want) << "case " << t;
  }
}

TEST(PackedWeights, AnotherLayersPackingIsRefused) {
  Rng rng(33);
  const auto a = nonempty_conv(rng, false, 1, 8, 16);
  const auto b = nonempty_conv(rng, false, 1, 16, 16);
  const PerChannelRequant rq{a.mult.data(), a.shift.data()};
  std::vector<uint8_t> scratch(conv2d_scratch_size(b.f));
  std::vector<int8_t> y(static_cast<size_t>(b.out.elements()));
  std::vector<unsigned char> zeros(4096, 0);
  EXPECT_EQ(
      opt::conv2d_prepacked(b.p, rq, b.in, b.input.data(), b.f, b.filter.data(), b.bias.data(),
                            b.out, y.data(), scratch.data(), scratch.size(), zeros.data()),
      Status::kBadParams);  // no header: refused, whether this core packs or not
  const size_t size = opt::conv2d_packed_size(a.f);
  if (size == 0) GTEST_SKIP() << "no packed Conv2D in this build";
  std::vector<unsigned char> packed(size);
  ASSERT_EQ(opt::conv2d_pack(rq, a.f, a.filter.data(), a.bias.data(), packed.data(), size),
            Status::kOk);
  EXPECT_EQ(opt::conv2d_pack(rq, a.f, a.filter.data(), a.bias.data(), packed.data(), size - 32),
            Status::kBadParams);
  EXPECT_EQ(
      opt::conv2d_prepacked(b.p, rq, b.in, b.input.data(), b.f, b.filter.data(), b.bias.data(),
                            b.out, y.data(), scratch.data(), scratch.size(), packed.data()),
      Status::kBadParams);
}

}  // namespace
