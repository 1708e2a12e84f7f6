// MaxPool2D, AveragePool2D and Mean on Arm DSP cores (pooling_dsp.h), four channels of a
// pixel as one word (NHWC: a tap's four channels are contiguous; unaligned LDR).
// Max: SSUB8 sets a GE bit per byte where x >= m, SEL takes those bytes of x: four
// signed maxima in two instructions a tap (six with the load and the loop); the clamp
// is one more pair each side.
// Sums (AveragePool2D, Mean): SXTAB16 adds bytes 0 and 2 (and, rotated by 8, 1 and 3)
// to int16 lanes: two instructions a tap for four channels (six in all); 256 int8
// values fit an int16 lane ([-32768, 32512]), so longer sums go to int32 in chunks.
// AveragePool2D then divides each channel's sum as the reference does (rounded_average:
// one SDIV); Mean adds offset * pixels and requantizes 32 channels at a time
// (requantize_uniform). Windows are clipped to the image as in the reference.
// docs/kernels.md.
#include "pooling_dsp.h"

#include <algorithm>

#include "../common/pool_shapes.h"
#include "requant_dsp.h"
#include "simd_dot.h"  // TINYFLEET_SIMD_ARM_DSP

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

#if defined(TINYFLEET_SIMD_ARM_DSP)

namespace {

constexpr int32_t kMaxLaneTaps = 256;  // int8 values an int16 lane can sum

// The self-test's wrong variants (kernels/firmware/CMakeLists.txt): MaxPool2D without
// its upper clamp, AveragePool2D truncating its quotients, Mean without the input offset.
#if defined(TINYFLEET_MUTANT_MAX_POOL_DSP)
constexpr uint32_t kNoUpperClamp = 1;
#else
constexpr uint32_t kNoUpperClamp = 0;
#endif
#if defined(TINYFLEET_MUTANT_AVERAGE_POOL_DSP)
inline int32_t average(int32_t sum, int32_t count) { return count > 0 ? sum / count : 0; }
#else
inline int32_t average(int32_t sum, int32_t count) { return detail::rounded_average(sum, count); }
#endif
#if defined(TINYFLEET_MUTANT_MEAN_DSP)
constexpr int32_t kOffsetFactor = 0;
#else
constexpr int32_t kOffsetFactor = 1;
#endif

// A rectangle of taps: `rows` rows `row_step` bytes apart, of `cols` taps `col_step`
// bytes apart (a pixel's channels are col_step bytes).
struct Window {
  const int8_t* first;
  int32_t rows, cols, row_step, col_step;
};

// The window of output pixel (oy, ox) of `image`, clipped to the image.
Window clip(const PoolParams& p, const Dims& in, const int8_t* image, int32_t oy, int32_t ox) {
  const int32_t top = oy * p.stride_h - p.padding.top, left = ox * p.stride_w - p.padding.left;
  const int32_t y0 = std::max<int32_t>(0, top), y1 = std::min<int32_t>(in.h, top + p.filter_h);
  const int32_t x0 = std::max<int32_t>(0, left), x1 = std::min<int32_t>(in.w, left + p.filter_w);
  return {image + (y0 * in.w + x0) * in.c, y1 - y0, x1 - x0, in.w * in.c, in.c};
}

// One window row of taps, `step` bytes apart from q to end (q < end): per tap LDR of
// the four channels, then OPS on that word %[v] and the state words %[a], %[b].
#define TINYFLEET_POOL_ROW(OPS)                             \
  __asm volatile(                                           \
      "1:\n"                                                \
      "ldr %[v], [%[q]]\n"                                  \
      "add %[q], %[q], %[step]\n" OPS                       \
      "cmp %[q], %[end]\n"                                  \
      "bne 1b\n"                                            \
      : [q] "+r"(q), [a] "+r"(a), [b] "+r"(b), [v] "=&r"(v) \
      : [step] "r"(step), [end] "r"(row + span)             \
      : "cc", "memory")

// The taps of channels c..c+3 over the window. kMax: a holds the four int8 maxima
// (SSUB8 sets a GE bit per byte where x >= a, SEL takes those bytes of x; b is scratch).
// Otherwise sums: SXTAB16 adds bytes 0 and 2 to a's int16 lanes and, rotated by 8,
// bytes 1 and 3 to b's (at most 256 taps).
template <bool kMax>
void taps4(const Window& w, int32_t c, uint32_t& a, uint32_t& b) {
  const int8_t* row = w.first + c;
  const int32_t step = w.col_step, span = w.cols * step;
  uint32_t v;
  for (int32_t y = 0; y < w.rows && span > 0; ++y, row += w.row_step) {
    const int8_t* q = row;
    if (kMax) {
      TINYFLEET_POOL_ROW(
          "ssub8 %[b], %[v], %[a]\n"
          "sel %[a], %[v], %[a]\n");
    } else {
      TINYFLEET_POOL_ROW(
          "sxtab16 %[a], %[a], %[v]\n"
          "sxtab16 %[b], %[b], %[v], ror #8\n");
    }
  }
}

// Adds the sums of channels c..c+3 over the window (at most 256 taps) to s[0..3].
void add_sums4(const Window& w, int32_t c, int32_t s[4]) {
  uint32_t even = 0, odd = 0;  // lanes: channels (c, c + 2) and (c + 1, c + 3)
  taps4<false>(w, c, even, odd);
  s[0] += static_cast<int16_t>(even);
  s[1] += static_cast<int16_t>(odd);
  s[2] += static_cast<int16_t>(even >> 16);
  s[3] += static_cast<int16_t>(odd >> 16);
}

// Runs f(window, output pixel) for every output pixel, in raster order.
template <typename F>
void for_each_pixel(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                    int8_t* output, F f) {
  const int8_t* image = input;
  for (int32_t b = 0; b < in.n; ++b, image += in.h * in.w * in.c) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      for (int32_t ox = 0; ox < out.w; ++ox, output += in.c) f(clip(p, in, image, oy, ox), output);
    }
  }
}

}  // namespace

bool max_pool_dsp(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                  int8_t* output) {
  if (in.c % 4 != 0) return false;
  const uint32_t lo = 0x01010101u * static_cast<uint8_t>(p.activation.min);
  const uint32_t hi = 0x01010101u * static_cast<uint8_t>(p.activation.max);
  for_each_pixel(p, in, input, out, output, [&](const Window& w, int8_t* o) {
    for (int32_t c = 0; c < w.col_step; c += 4) {
      uint32_t m = 0x80808080u, t = 0;  // -128: an empty window's maximum, as the reference
      taps4<true>(w, c, m, t);
      __asm(
          "ssub8 %[t], %[m], %[lo]\n"  // the clamp: max(m, lo), then min(m, hi)
          "sel %[m], %[m], %[lo]\n"
          "ssub8 %[t], %[hi], %[m]\n"
          "sel %[m], %[m], %[hi]\n"
          : [m] "+r"(m), [t] "=&r"(t)
          : [lo] "r"(lo), [hi] "r"(kNoUpperClamp ? 0x7f7f7f7fu : hi)
          : "cc");
      std::memcpy(o + c, &m, 4);
    }
  });
  return true;
}

bool average_pool_dsp(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                      int8_t* output) {
  if (in.c % 4 != 0 || p.filter_h * p.filter_w > kMaxLaneTaps) return false;
  const ActivationRange a = p.activation;
  for_each_pixel(p, in, input, out, output, [&](const Window& w, int8_t* o) {
    const int32_t count = w.rows * w.cols;
    for (int32_t c = 0; c < w.col_step; c += 4) {
      int32_t s[4] = {0, 0, 0, 0};
      add_sums4(w, c, s);
      for (int32_t k = 0; k < 4; ++k) {
        o[c + k] = static_cast<int8_t>(std::min(std::max(average(s[k], count), a.min), a.max));
      }
    }
  });
  return true;
}

bool mean_dsp(const MeanParams& p, const Dims& in, const int8_t* input, int8_t* output) {
  dsp::UniformRequant u;
  if (in.c % 4 != 0 ||
      !dsp::uniform_requant_setup(p.multiplier, p.shift, p.output_offset, {}, &u)) {
    return false;
  }
  // sum(x + offset) = sum(x) + offset * pixels; the image's pixels as one row, summed
  // 256 at a time.
  const int32_t pixels = in.h * in.w, offset = kOffsetFactor * p.input_offset * pixels;
  int32_t acc[dsp::kUniformBlock];
  for (int32_t b = 0; b < in.n; ++b, input += pixels * in.c, output += in.c) {
    for (int32_t c0 = 0; c0 < in.c; c0 += dsp::kUniformBlock) {
      const int32_t n = std::min(in.c - c0, dsp::kUniformBlock);
      for (int32_t k = 0; k < n; k += 4) {
        int32_t* s = acc + k;
        s[0] = s[1] = s[2] = s[3] = offset;
        for (int32_t i = 0; i < pixels; i += kMaxLaneTaps) {
          const Window w{input + i * in.c, 1, std::min(kMaxLaneTaps, pixels - i), 0, in.c};
          add_sums4(w, c0 + k, s);
        }
      }
      dsp::requantize_uniform(u, acc, n, output + c0);
    }
  }
  return true;
}

#else

bool max_pool_dsp(const PoolParams&, const Dims&, const int8_t*, const Dims&, int8_t*) {
  return false;
}
bool average_pool_dsp(const PoolParams&, const Dims&, const int8_t*, const Dims&, int8_t*) {
  return false;
}
bool mean_dsp(const MeanParams&, const Dims&, const int8_t*, int8_t*) { return false; }

#endif

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
