// Conv2D with the Arm DSP extension (conv2d_dsp.h). acc = (bias + offset * sum w) +
// sum x * w: the offset term is computed once per call per output channel, so the inner
// loop (mac2x2: 22 instructions per 16 MACs) multiplies the stored int8 values and a
// padded tap holds the zero point (x = -offset), whose products cancel the folded term.
// Output pixels are taken two at a time in raster order; both receptive fields are read
// before either output is written (the in-place contract of in_place.h), then each pixel
// is requantized by requant_dsp's assembly loop. docs/kernels.md.
#include "conv2d_dsp.h"

#include <cstring>

#include "mac_dsp.h"
#include "requant_dsp.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

#if defined(TINYFLEET_SIMD_ARM_DSP)
namespace {

constexpr int32_t kMaxOut = 256;  // output channels: accumulators on the stack (3 KB)

// bias[c] + offset * sum of filter row c (k values), for every output channel.
void fold_bias(const int8_t* filter, const int32_t* bias, int32_t channels, int32_t k,
               int32_t offset, int32_t* folded) {
  const auto ones = static_cast<int16x2_t>(0x00010001);
  for (int32_t c = 0; c < channels; ++c, filter += k) {
    int32_t sum = 0, i = 0;
    for (; i + 4 <= k; i += 4) {
      const uint32_t w = simd::load32(filter + i);
      sum = __smlad(__sxtb16(static_cast<int8x4_t>(w)), ones, sum);
      sum = __smlad(__sxtb16(static_cast<int8x4_t>((w >> 8) | (w << 24))), ones, sum);
    }
    for (; i < k; ++i) sum += filter[i];
    folded[c] = (bias ? bias[c] : 0) + offset * sum;
  }
}

struct Geometry {
  const int8_t* input;
  int32_t in_h, in_w, in_c, f_h, f_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
  int32_t out_h, out_w;
  int8_t zero_point;
};

// Copies the receptive field of output pixel q (raster index over batch, rows, columns)
// to dst as [ky][kx][c] int8, taps outside the image as the zero point.
void receptive_field(const Geometry& g, int32_t q, int8_t* dst) {
  const int32_t ox = q % g.out_w, oy = (q / g.out_w) % g.out_h, b = q / (g.out_w * g.out_h);
  const int32_t iy0 = oy * g.stride_h - g.pad_top, ix0 = ox * g.stride_w - g.pad_left;
  const int32_t c = g.in_c, row = g.f_w * c;
  const int8_t* image = g.input + b * g.in_h * g.in_w * c;
  for (int32_t ky = 0; ky < g.f_h; ++ky, dst += row) {
    const int32_t iy = iy0 + ky * g.dil_h;
    if (iy < 0 || iy >= g.in_h) {
      std::memset(dst, g.zero_point, static_cast<size_t>(row));
      continue;
    }
    const int8_t* src = image + iy * g.in_w * c;
    if (g.dil_w == 1 && ix0 >= 0 && ix0 + g.f_w <= g.in_w) {  // the whole row inside
      std::memcpy(dst, src + ix0 * c, static_cast<size_t>(row));
      continue;
    }
    for (int32_t kx = 0; kx < g.f_w; ++kx) {
      const int32_t ix = ix0 + kx * g.dil_w;
      if (ix < 0 || ix >= g.in_w) {
        std::memset(dst + kx * c, g.zero_point, static_cast<size_t>(c));
      } else {
        std::memcpy(dst + kx * c, src + ix * c, static_cast<size_t>(c));
      }
    }
  }
}

// Accumulators of all output channels for the two pixels at x and x + k (folded bias
// included); an odd channel count recomputes channel n - 2 with the last pair. Pointers
// step through the channel pairs (this loop's overhead counts on layers of few taps).
__attribute__((always_inline)) inline void channel_pair(const int8_t* x, const int8_t* w, int32_t k,
                                                        const int32_t* folded, int32_t* acc0,
                                                        int32_t* acc1) {
  dsp_mac::Acc2x2 a{folded[0], folded[1], folded[0], folded[1]};
  dsp_mac::mac2x2(x, w, k, &a);
  acc0[0] = a.a00;
  acc0[1] = a.a01;
  acc1[0] = a.a10;
  acc1[1] = a.a11;
}
__attribute__((noinline)) void two_pixels(const int8_t* x, const int8_t* filter, int32_t k,
                                          const int32_t* folded, int32_t n, int32_t* acc0,
                                          int32_t* acc1) {
  const int8_t* w = filter;
  const int32_t step = 2 * k;
  for (int32_t c = 0; c + 2 <= n; c += 2, w += step) {
    channel_pair(x, w, k, folded + c, acc0 + c, acc1 + c);
  }
  if (n % 2) channel_pair(x, filter + (n - 2) * k, k, folded + n - 2, acc0 + n - 2, acc1 + n - 2);
}

// The same for one pixel (the last of an odd count).
__attribute__((noinline)) void one_pixel(const int8_t* x, const int8_t* filter, int32_t k,
                                         const int32_t* folded, int32_t n, int32_t* acc) {
  for (int32_t c = 0; c < n; c += 2) {
    const int32_t c0 = c + 2 <= n ? c : n - 2;
    acc[c0] = folded[c0];
    acc[c0 + 1] = folded[c0 + 1];
    dsp_mac::mac1x2(x, filter + c0 * k, k, 0, &acc[c0], &acc[c0 + 1]);
  }
}

}  // namespace

bool conv2d_dsp(const Conv2DParams& p, const PerChannelRequant& rq, const Dims& in,
                const int8_t* input, const Dims& f, const int8_t* filter, const int32_t* bias,
                const Dims& out, int8_t* output, void* scratch, size_t scratch_bytes) {
  const int32_t n = out.c, k = f.h * f.w * f.c;
  // A padded tap holds the zero point -offset, which must be an int8.
  if (n < 2 || n > kMaxOut || p.input_offset < -127 || p.input_offset > 128) return false;
  const bool direct = f.h == 1 && f.w == 1 && p.stride_h == 1 && p.stride_w == 1 &&
                      p.padding.top == 0 && p.padding.left == 0 && out.h == in.h && out.w == in.w;
  if (!direct && (!scratch || scratch_bytes < 2 * static_cast<size_t>(k))) return false;
  dsp::Requant requant;
  if (!dsp::requant_setup(rq, n, p.output_offset, p.activation, &requant)) return false;
  int32_t folded[kMaxOut], acc0[kMaxOut], acc1[kMaxOut];
  fold_bias(filter, bias, n, k, p.input_offset, folded);
  const Geometry g{input,        in.h,          in.w,
                   in.c,         f.h,           f.w,
                   p.stride_h,   p.stride_w,    p.dilation_h,
                   p.dilation_w, p.padding.top, p.padding.left,
                   out.h,        out.w,         static_cast<int8_t>(-p.input_offset)};
  auto* fields = static_cast<int8_t*>(scratch);
  const int32_t pixels = out.n * out.h * out.w;
  for (int32_t q = 0; q < pixels; q += 2) {
    const bool two = q + 1 < pixels;
    const int8_t* x = input + q * k;
    if (!direct) {
      receptive_field(g, q, fields);
      if (two) receptive_field(g, q + 1, fields + k);
      x = fields;
    }
    int8_t* o = output + q * n;
    if (two) {
      two_pixels(x, filter, k, folded, n, acc0, acc1);
      dsp::requantize_run(requant, acc0, 0, n, o);
      dsp::requantize_run(requant, acc1, 0, n, o + n);
    } else {
      one_pixel(x, filter, k, folded, n, acc0);
      dsp::requantize_run(requant, acc0, 0, n, o);
    }
  }
  return true;
}

#else

bool conv2d_dsp(const Conv2DParams&, const PerChannelRequant&, const Dims&, const int8_t*,
                const Dims&, const int8_t*, const int32_t*, const Dims&, int8_t*, void*, size_t) {
  return false;
}

#endif

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
