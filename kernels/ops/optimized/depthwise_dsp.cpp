// DepthwiseConv2D with the Arm DSP extension (depthwise_dsp.h). Four channels of one
// tap are one word of input and one of weights: SXTAB16 widens input bytes 0 and 2
// (and, rotated, 1 and 3) to int16 with the input offset added, SXTB16 the weights, and
// SMLABB/SMLATT add each channel's product to its own accumulator, which stays in a
// register across the window (assembly: 13 instructions per tap of 4 channels). The
// taps of a window are a list of (input, weight) byte offsets, both from the filter:
// per pixel, the corner moved for windows inside the image, and only the taps inside it
// for border windows (as the reference skips the others). A pixel's accumulators are
// then requantized by an assembly loop (requant_dsp.h, 28 instructions a channel).
// docs/kernels.md.
#include "depthwise_dsp.h"

#include "../common/conv_shapes.h"
#include "depthwise_3x3_dsp.h"
#include "requant_dsp.h"
#include "simd_dot.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

#if defined(TINYFLEET_SIMD_ARM_DSP)
namespace {

constexpr int32_t kMaxTaps = 49;  // 7x7; larger windows take the portable path

struct Tap {
  int32_t x, w;  // byte offsets of the tap's input pixel and weights from the filter
};

// The byte at a distance from base (an input byte addressed from the filter).
inline int32_t byte_at(const int8_t* base, int32_t distance) {
  return *reinterpret_cast<const int8_t*>(reinterpret_cast<uintptr_t>(base) +
                                          static_cast<uintptr_t>(distance));
}

struct Acc4 {
  int32_t a0, a1, a2, a3;
};

#if defined(TINYFLEET_MUTANT_DEPTHWISE_DSP)  // the self-test's wrong variant: channel 3
#define TINYFLEET_DW_LAST "smlatb"           // times channel 1's weight
#else
#define TINYFLEET_DW_LAST "smlatt"
#endif

// acc[k] += sum over taps of (w[tap.x + k] + offset) * w[tap.w + k], k < 4 (both
// offsets from the filter, w = filter + first channel); off2 holds the input offset in
// both halfwords. In assembly so that the accumulators and the tap list stay in
// registers: 13 instructions a tap.
__attribute__((always_inline)) inline void taps4(const int8_t* w, const Tap* t, const Tap* end,
                                                 int32_t off2, Acc4* acc) {
  if (t == end) return;
  int32_t a0 = acc->a0, a1 = acc->a1, a2 = acc->a2, a3 = acc->a3;
  int32_t xe, xo, we, wo;
  __asm volatile(
      "1:\n"
      "ldrd %[xo], %[wo], [%[t]], #8\n"
      "ldr %[xo], [%[w], %[xo]]\n"
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
      : [w] "r"(w), [off2] "r"(off2), [end] "r"(end)
      : "cc", "memory");
  *acc = {a0, a1, a2, a3};
}

// One output pixel, all channels: what the channel loop needs, so that it runs with few
// live values (out of line).
struct Pixel {
  const int8_t* filter;
  const Tap* taps;
  const Tap* end;
  const int32_t* bias;
  int8_t* o;
  int32_t c, off2, offset;
  dsp::Requant rq;
};

constexpr int32_t kChunk = 128;  // channels accumulated before they are requantized

// Accumulates all channels of the pixel, kChunk at a time, and requantizes each chunk
// (writing a pixel's outputs after reading its window keeps the in-place contract).
__attribute__((noinline)) void pixel(const Pixel& px) {
  int32_t acc[kChunk];
  for (int32_t ch0 = 0; ch0 < px.c; ch0 += kChunk) {
    const int32_t n = px.c - ch0 < kChunk ? px.c - ch0 : kChunk;
    int32_t k = 0;
    for (; k + 4 <= n; k += 4) {
      const int32_t ch = ch0 + k;
      Acc4 a{0, 0, 0, 0};
      if (px.bias) a = {px.bias[ch], px.bias[ch + 1], px.bias[ch + 2], px.bias[ch + 3]};
      taps4(px.filter + ch, px.taps, px.end, px.off2, &a);
      acc[k] = a.a0;
      acc[k + 1] = a.a1;
      acc[k + 2] = a.a2;
      acc[k + 3] = a.a3;
    }
    for (; k < n; ++k) {  // the last c % 4 channels
      const int32_t ch = ch0 + k;
      int32_t sum = px.bias ? px.bias[ch] : 0;
      for (const Tap* t = px.taps; t != px.end; ++t) {
        sum += (byte_at(px.filter, t->x + ch) + px.offset) * px.filter[t->w + ch];
      }
      acc[k] = sum;
    }
    dsp::requantize_run(px.rq, acc, ch0, n, px.o + ch0);
  }
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
  dsp::Requant requant;
  if (!dsp::requant_setup(rq, out.c, p.output_offset, p.activation, &requant)) return false;
  const int32_t in_h = in.h, in_w = in.w, c = in.c, f_h = f.h, f_w = f.w;
  const int32_t dil_h = p.dilation_h, dil_w = p.dilation_w, stride_h = p.stride_h,
                stride_w = p.stride_w, pad_top = p.padding.top, pad_left = p.padding.left;
  const int32_t offset = p.input_offset;
  const int32_t off2 = static_cast<int32_t>((static_cast<uint32_t>(offset) & 0xffffu) |
                                            (static_cast<uint32_t>(offset) << 16));
  // Taps of a window inside the image: input offsets relative to its top-left pixel
  // (rel_x), then from the filter per pixel; border windows list only their taps inside.
  const int32_t taps_n = f_h * f_w;
  int32_t rel_x[kMaxTaps];
  Tap inside_taps[kMaxTaps], border_taps[kMaxTaps];
  for (int32_t ky = 0; ky < f_h; ++ky) {
    for (int32_t kx = 0; kx < f_w; ++kx) {
      rel_x[ky * f_w + kx] = (ky * dil_h * in_w + kx * dil_w) * c;
      inside_taps[ky * f_w + kx].w = (ky * f_w + kx) * c;
    }
  }
  const int32_t span_h = (f_h - 1) * dil_h, span_w = (f_w - 1) * dil_w;
  Pixel px{filter, nullptr, nullptr, bias, output, c, off2, offset, requant};
  // 3x3 windows inside the image on few channels: depthwise_3x3_dsp.h.
  dsp::Dw3x3 fast;
  const bool use_fast =
      f_h == 3 && f_w == 3 && dil_h == 1 && dil_w == 1 &&
      dsp::dw3x3_prepare(filter, bias, c, offset, in_w, stride_w, &requant, &fast);
  for (int32_t b = 0; b < in.n; ++b) {
    // Byte distance from the filter to image b (the DSP loads address both from the
    // filter: one base register fewer).
    const int32_t image =
        static_cast<int32_t>(reinterpret_cast<uintptr_t>(input + b * in_h * in_w * c) -
                             reinterpret_cast<uintptr_t>(filter));
    for (int32_t oy = 0; oy < out.h; ++oy) {
      const int32_t iy0 = oy * stride_h - pad_top;
      for (int32_t ox = 0; ox < out.w; ++ox, px.o += c) {
        const int32_t ix0 = ox * stride_w - pad_left;
        if (iy0 >= 0 && ix0 >= 0 && iy0 + span_h < in_h && ix0 + span_w < in_w && use_fast) {
          int32_t n = 1;  // this and the next pixels of the row whose windows are inside
          while (ox + n < out.w && (ox + n) * stride_w - pad_left + span_w < in_w) ++n;
          dsp::dw3x3_span(fast, input + ((b * in_h + iy0) * in_w + ix0) * c, n, px.o);
          ox += n - 1;
          px.o += (n - 1) * c;
          continue;
        } else if (iy0 >= 0 && ix0 >= 0 && iy0 + span_h < in_h && ix0 + span_w < in_w) {
          const int32_t corner = image + (iy0 * in_w + ix0) * c;
          for (int32_t t = 0; t < taps_n; ++t) inside_taps[t].x = corner + rel_x[t];
          px.taps = inside_taps;
          px.end = inside_taps + taps_n;
        } else {
          Tap* end = border_taps;
          for (int32_t ky = 0; ky < f_h; ++ky) {
            const int32_t iy = iy0 + ky * dil_h;
            for (int32_t kx = 0; kx < f_w && iy >= 0 && iy < in_h; ++kx) {
              const int32_t ix = ix0 + kx * dil_w;
              if (ix >= 0 && ix < in_w)
                *end++ = {image + (iy * in_w + ix) * c, (ky * f_w + kx) * c};
            }
          }
          px.taps = border_taps;
          px.end = end;
        }
        pixel(px);
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
