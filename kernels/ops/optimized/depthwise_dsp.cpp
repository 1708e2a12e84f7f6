// DepthwiseConv2D with the Arm DSP extension (depthwise_dsp.h). Four channels of one
// tap are one word of input and one of weights: SXTAB16 widens input bytes 0 and 2
// (and, rotated, 1 and 3) to int16 with the input offset added, SXTB16 the weights, and
// SMLABB/SMLATT add each channel's product to its own accumulator, which stays in a
// register across the window. The taps of a window are a list of (input, weight) byte
// offsets: built once per call for windows inside the image, and per pixel, with only
// the taps inside the image, for border windows (as the reference skips the others).
#include "depthwise_dsp.h"

#include "../common/conv_shapes.h"
#include "simd_dot.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

#if defined(TINYFLEET_SIMD_ARM_DSP)
namespace {

constexpr int32_t kMaxTaps = 49;  // 7x7; larger windows take the portable path

struct Tap {
  int32_t x, w;  // byte offsets of the tap's input pixel and weights
};

struct Acc4 {
  int32_t a0, a1, a2, a3;
};

#if defined(TINYFLEET_MUTANT_DEPTHWISE_DSP)  // the self-test's wrong variant: channel 3
#define TINYFLEET_DW_LAST "smlatb"           // times channel 1's weight
#else
#define TINYFLEET_DW_LAST "smlatt"
#endif

// acc[k] += sum over taps of (x[tap.x + k] + offset) * w[tap.w + k], k < 4; off2 holds
// the input offset in both halfwords. In assembly so that the four accumulators, both
// bases and the tap list stay in registers (gcc -Os spills them): 13 instructions a tap.
__attribute__((always_inline)) inline void taps4(const int8_t* x, const int8_t* w, const Tap* t,
                                                 const Tap* end, int32_t off2, Acc4* acc) {
  if (t == end) return;
  int32_t a0 = acc->a0, a1 = acc->a1, a2 = acc->a2, a3 = acc->a3;
  int32_t xe, xo, we, wo;
  __asm volatile(
      "1:\n"
      "ldrd %[xo], %[wo], [%[t]], #8\n"
      "ldr %[xo], [%[x], %[xo]]\n"
      "ldr %[wo], [%[w], %[wo]]\n"
      "sxtab16 %[xe], %[off2], %[xo]\n"
      "sxtab16 %[xo], %[off2], %[xo], ror #8\n"
      "sxtb16 %[we], %[wo]\n"
      "sxtb16 %[wo], %[wo], ror #8\n"
      "smlabb %[a0], %[xe], %[we], %[a0]\n"
      "smlatt %[a2], %[xe], %[we], %[a2]\n"
      "smlabb %[a1], %[xo], %[wo], %[a1]\n"
      "" TINYFLEET_DW_LAST
      " %[a3], %[xo], %[wo], %[a3]\n"
      "cmp %[t], %[end]\n"
      "bne 1b\n"
      : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [t] "+r"(t), [xe] "=&r"(xe),
        [xo] "=&r"(xo), [we] "=&r"(we), [wo] "=&r"(wo)
      : [x] "r"(x), [w] "r"(w), [off2] "r"(off2), [end] "r"(end)
      : "cc", "memory");
  *acc = {a0, a1, a2, a3};
}

// detail::requantize for a multiplier >= 0 (every artifact's): TFLite's nudge of the
// doubling high multiply is 2^30 for both signs once its truncating division is taken
// into account, so it is one SMLAL onto 2^30. A left shift (a real multiplier above 1)
// is rare and takes the out-of-line path.
__attribute__((noinline)) int32_t scale_left(int32_t acc, int32_t multiplier, int32_t shift) {
  return multiply_by_quantized_multiplier(acc, multiplier, shift);
}
__attribute__((always_inline)) inline int8_t requantize(int32_t acc, int32_t multiplier,
                                                        int32_t shift, int32_t offset, int32_t lo,
                                                        int32_t hi) {
  int32_t v;
  if (shift > 0) {
    v = scale_left(acc, multiplier, shift);
  } else {
    const int64_t ab = int64_t{acc} * multiplier + (int64_t{1} << 30);
    const auto x = static_cast<int32_t>(static_cast<uint64_t>(ab) >> 31);
    const int32_t right = -shift;
    const int32_t mask = static_cast<int32_t>((uint32_t{1} << right) - 1u);
    const int32_t threshold = (mask >> 1) + static_cast<int32_t>(static_cast<uint32_t>(x) >> 31);
    v = (x >> right) + ((x & mask) > threshold ? 1 : 0);
  }
  v += offset;
  v = v < lo ? lo : v;
  return static_cast<int8_t>(v > hi ? hi : v);
}

}  // namespace

bool depthwise_dsp(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& in,
                   const int8_t* input, const Dims& f, const int8_t* filter, const int32_t* bias,
                   const Dims& out, int8_t* output) {
  // (x + offset) must fit int16 for SXTAB16; multipliers >= 0 for requantize().
  if (p.depth_multiplier != 1 || p.input_offset < -128 || p.input_offset > 128 ||
      f.h * f.w > kMaxTaps) {
    return false;
  }
  for (int32_t ch = 0; ch < out.c; ++ch) {
    if (rq.multiplier[ch] < 0) return false;
  }
  const int32_t in_h = in.h, in_w = in.w, c = in.c, f_h = f.h, f_w = f.w;
  const int32_t dil_h = p.dilation_h, dil_w = p.dilation_w, stride_h = p.stride_h,
                stride_w = p.stride_w, pad_top = p.padding.top, pad_left = p.padding.left;
  const int32_t offset = p.input_offset, out_offset = p.output_offset;
  const int32_t lo = p.activation.min, hi = p.activation.max;
  const int32_t off2 = static_cast<int32_t>((static_cast<uint32_t>(offset) & 0xffffu) |
                                            (static_cast<uint32_t>(offset) << 16));
  // Taps of an inside window, relative to its top-left input pixel.
  Tap inside_taps[kMaxTaps], border_taps[kMaxTaps];
  for (int32_t ky = 0; ky < f_h; ++ky) {
    for (int32_t kx = 0; kx < f_w; ++kx) {
      inside_taps[ky * f_w + kx] = {(ky * dil_h * in_w + kx * dil_w) * c, (ky * f_w + kx) * c};
    }
  }
  const int32_t span_h = (f_h - 1) * dil_h, span_w = (f_w - 1) * dil_w;
  for (int32_t b = 0; b < in.n; ++b) {
    const int8_t* image = input + b * in_h * in_w * c;
    int8_t* o = output + b * out.h * out.w * c;
    for (int32_t oy = 0; oy < out.h; ++oy) {
      const int32_t iy0 = oy * stride_h - pad_top;
      for (int32_t ox = 0; ox < out.w; ++ox, o += c) {
        const int32_t ix0 = ox * stride_w - pad_left;
        const Tap* taps = inside_taps;
        const Tap* end = inside_taps + f_h * f_w;
        Tap* border_end = border_taps;
        const int8_t* x = image;
        if (iy0 >= 0 && ix0 >= 0 && iy0 + span_h < in_h && ix0 + span_w < in_w) {
          x += (iy0 * in_w + ix0) * c;
        } else {  // offsets from the image's first pixel, taps outside it left out
          taps = border_taps;
          for (int32_t ky = 0; ky < f_h; ++ky) {
            const int32_t iy = iy0 + ky * dil_h;
            for (int32_t kx = 0; kx < f_w && iy >= 0 && iy < in_h; ++kx) {
              const int32_t ix = ix0 + kx * dil_w;
              if (ix >= 0 && ix < in_w) *border_end++ = {(iy * in_w + ix) * c, (ky * f_w + kx) * c};
            }
          }
          end = border_end;
        }
        int32_t ch = 0;
        for (; ch + 4 <= c; ch += 4) {
          Acc4 acc{0, 0, 0, 0};
          if (bias) acc = {bias[ch], bias[ch + 1], bias[ch + 2], bias[ch + 3]};
          taps4(x + ch, filter + ch, taps, end, off2, &acc);
          const int32_t* m = rq.multiplier + ch;
          const int32_t* s = rq.shift + ch;
          o[ch] = requantize(acc.a0, m[0], s[0], out_offset, lo, hi);
          o[ch + 1] = requantize(acc.a1, m[1], s[1], out_offset, lo, hi);
          o[ch + 2] = requantize(acc.a2, m[2], s[2], out_offset, lo, hi);
          o[ch + 3] = requantize(acc.a3, m[3], s[3], out_offset, lo, hi);
        }
        for (; ch < c; ++ch) {  // the last c % 4 channels
          int32_t acc = bias ? bias[ch] : 0;
          for (const Tap* t = taps; t != end; ++t)
            acc += (x[t->x + ch] + offset) * filter[t->w + ch];
          o[ch] = requantize(acc, rq.multiplier[ch], rq.shift[ch], out_offset, lo, hi);
        }
      }
    }
  }
  return true;
}

#else

bool depthwise_dsp(const DepthwiseParams&, const PerChannelRequant&, const Dims&, const int8_t*,
                   const Dims&, const int8_t*, const int32_t*, const Dims&, int8_t*) {
  return false;
}

#endif

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
