// DepthwiseConv2D with packed weights (see depthwise_packed.h).
//
// acc = bias + sum_t (x_t + offset) * w_t = (bias + offset * sum_t w_t) + sum_t x_t * w_t:
// the offset is folded into the bias once, and a tap outside the image reads a row of
// zero points (x = -offset), whose products cancel the folded term exactly, so border
// and interior windows run the same code. The int32 sums wrap like the reference's
// would not: their final values agree whenever the reference's do not overflow.
//
// A unit is 16 lanes: 16 channels of one pixel, or, when the channel count is 8 mod 16,
// the last 8 channels of two neighbouring pixels of a row. Two taps' inputs widened to
// int16 are interleaved by _mm256_unpacklo/hi_epi16, which leaves lanes (0..3 | 8..11)
// and (4..7 | 12..15); weights, folded biases and requantization constants are laid
// out in that order once per call.
#include "depthwise_packed.h"

#include <cstring>
#include <type_traits>

#include "requant_avx2.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

#if defined(TINYFLEET_SIMD_AVX2)
namespace {

constexpr int32_t kMaxTapPairs = 13;  // windows up to 26 taps (5x5)
constexpr int32_t kMaxChannels = 512;
constexpr int32_t kMaxUnits = kMaxChannels / 16;
constexpr int32_t kPixels = 2;  // pixels of a row computed together

// The constants of one unit, in accumulator lane order.
struct Unit {
  __m256i bias_lo, bias_hi;
  simd::Requant8 lo, hi;
};

// Which unit lane L (0..15) an accumulator lane j (0..7) of lo/hi holds.
inline int32_t lane_of(int32_t j, bool hi) { return (j < 4 ? j : j + 4) + (hi ? 4 : 0); }

struct Layer {
  int32_t channels, taps, tap_pairs;
  const __m256i* w;  // [unit][tap pair][lo, hi]
  const Unit* unit;
  simd::Narrow narrow;
};

inline __m256i widen16(const int8_t* x) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
}
inline __m256i widen8x2(const int8_t* a, const int8_t* b) {
  return _mm256_cvtepi8_epi16(
      _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a)),
                         _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b))));
}

// One unit: `a` and `b` give each tap's input pixel (the same pixel twice for a unit
// of 16 channels); the 16 results go to out[0..15]. kTaps: the window's taps when known
// at compile time (3x3: the loop unrolls), else 0.
template <bool kPair, int32_t kTaps>
inline void run_unit(const Layer& k, int32_t u, const int8_t* const* a, const int8_t* const* b,
                     int8_t* out) {
  const int32_t c0 = u * 16;
  const int32_t taps = kTaps > 0 ? kTaps : k.taps, tap_pairs = (taps + 1) / 2;
  const __m256i* w = k.w + u * tap_pairs * 2;
  __m256i lo = k.unit[u].bias_lo, hi = k.unit[u].bias_hi;
  for (int32_t q = 0; q < tap_pairs; ++q) {
    const int32_t t0 = 2 * q,
                  t1 = 2 * q + 1 < taps ? 2 * q + 1 : 2 * q;  // weights 0 past the end
    const __m256i x0 = kPair ? widen8x2(a[t0] + c0, b[t0] + c0) : widen16(a[t0] + c0);
    const __m256i x1 = kPair ? widen8x2(a[t1] + c0, b[t1] + c0) : widen16(a[t1] + c0);
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), w[2 * q]));
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), w[2 * q + 1]));
  }
  k.narrow.store16_lanes(k.unit[u].lo.apply(lo), k.unit[u].hi.apply(hi), out);
}

// Two pixels (16 channels each) of one unit: every weight and constant loaded once for
// both.
template <int32_t kTaps>
inline void run_unit_x2(const Layer& k, int32_t u, const int8_t* const* a, const int8_t* const* b,
                        int8_t* out_a, int8_t* out_b) {
  const int32_t c0 = u * 16;
  const int32_t taps = kTaps > 0 ? kTaps : k.taps, tap_pairs = (taps + 1) / 2;
  const __m256i* w = k.w + u * tap_pairs * 2;
  __m256i lo_a = k.unit[u].bias_lo, hi_a = k.unit[u].bias_hi;
  __m256i lo_b = lo_a, hi_b = hi_a;
  for (int32_t q = 0; q < tap_pairs; ++q) {
    const int32_t t0 = 2 * q,
                  t1 = 2 * q + 1 < taps ? 2 * q + 1 : 2 * q;  // weights 0 past the end
    const __m256i w0 = w[2 * q], w1 = w[2 * q + 1];
    const __m256i xa0 = widen16(a[t0] + c0), xa1 = widen16(a[t1] + c0);
    const __m256i xb0 = widen16(b[t0] + c0), xb1 = widen16(b[t1] + c0);
    lo_a = _mm256_add_epi32(lo_a, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa0, xa1), w0));
    hi_a = _mm256_add_epi32(hi_a, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa0, xa1), w1));
    lo_b = _mm256_add_epi32(lo_b, _mm256_madd_epi16(_mm256_unpacklo_epi16(xb0, xb1), w0));
    hi_b = _mm256_add_epi32(hi_b, _mm256_madd_epi16(_mm256_unpackhi_epi16(xb0, xb1), w1));
  }
  const simd::Requant8& rlo = k.unit[u].lo;
  const simd::Requant8& rhi = k.unit[u].hi;
  k.narrow.store16_lanes(rlo.apply(lo_a), rhi.apply(hi_a), out_a);
  k.narrow.store16_lanes(rlo.apply(lo_b), rhi.apply(hi_b), out_b);
}

// The packed layout, from a 32-byte aligned start: this header, the constants of each
// unit, then the weights [unit][tap pair][lo, hi].
struct Header {
  uint32_t magic;
  int32_t channels, taps, offset;
  int32_t unused[4];
};
constexpr uint32_t kMagic = 0x32766e64;  // "dnv2"

bool handled(const DepthwiseParams& p, const Dims& f) {
  const int32_t channels = f.c, taps = f.h * f.w, offset = p.input_offset;
  return p.depth_multiplier == 1 && channels > 0 && channels % 8 == 0 && channels <= kMaxChannels &&
         taps > 0 && taps <= 2 * kMaxTapPairs && offset >= -127 && offset <= 128;
}

size_t layout_bytes(int32_t channels, int32_t taps) {
  const auto units = static_cast<size_t>((channels + 15) / 16);
  return sizeof(Header) + units * sizeof(Unit) +
         units * static_cast<size_t>((taps + 1) / 2) * 2 * sizeof(__m256i);
}

void* align32(void* p) {
  return reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(p) + 31) & ~uintptr_t{31});
}

// Writes the layout at `at` (32-byte aligned); handled(p, f) must hold.
void pack_layer(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& f,
                const int8_t* filter, const int32_t* bias, void* at) {
  const int32_t channels = f.c, taps = f.h * f.w, offset = p.input_offset;
  const int32_t units = (channels + 15) / 16, tap_pairs = (taps + 1) / 2;
  auto* h = static_cast<Header*>(at);
  *h = Header{kMagic, channels, taps, offset, {}};
  auto* unit = reinterpret_cast<Unit*>(h + 1);
  auto* w = reinterpret_cast<__m256i*>(unit + units);
  for (int32_t u = 0; u < units; ++u) {
    const int32_t c0 = u * 16, n = channels - c0 < 16 ? channels - c0 : 16;
    auto channel = [&](int32_t lane) { return c0 + lane % n; };  // 8 channels: twice
    auto weight = [&](int32_t t, int32_t c) { return t < taps ? filter[t * channels + c] : 0; };
    for (int32_t q = 0; q < tap_pairs; ++q) {
      alignas(32) int16_t w0[16], w1[16];
      for (int32_t lane = 0; lane < 16; ++lane) {
        w0[lane] = static_cast<int16_t>(weight(2 * q, channel(lane)));
        w1[lane] = static_cast<int16_t>(weight(2 * q + 1, channel(lane)));
      }
      const __m256i v0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w0));
      const __m256i v1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w1));
      w[(u * tap_pairs + q) * 2] = _mm256_unpacklo_epi16(v0, v1);
      w[(u * tap_pairs + q) * 2 + 1] = _mm256_unpackhi_epi16(v0, v1);
    }
    for (int32_t half = 0; half < 2; ++half) {
      alignas(32) int32_t b[8], m[8], s[8];
      for (int32_t j = 0; j < 8; ++j) {
        const int32_t c = channel(lane_of(j, half == 1));
        uint32_t sum = bias ? static_cast<uint32_t>(bias[c]) : 0u;
        for (int32_t t = 0; t < taps; ++t) {
          sum += static_cast<uint32_t>(offset) * static_cast<uint32_t>(weight(t, c));
        }
        b[j] = static_cast<int32_t>(sum);
        m[j] = rq.multiplier[c];
        s[j] = rq.shift[c];
      }
      const __m256i bv = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
      (half ? unit[u].bias_hi : unit[u].bias_lo) = bv;
      (half ? unit[u].hi : unit[u].lo) = simd::Requant8(m, s);
    }
  }
}

// Runs the layer packed at `at` (32-byte aligned); false if it holds another layer.
bool run_layer(const DepthwiseParams& p, const Dims& in, const int8_t* input, const Dims& f,
               const Dims& out, int8_t* output, const void* at) {
  const auto* h = static_cast<const Header*>(at);
  if (h->magic != kMagic || h->channels != in.c || h->taps != f.h * f.w ||
      h->offset != p.input_offset || !handled(p, f)) {
    return false;
  }
  const int32_t channels = in.c, taps = f.h * f.w, offset = p.input_offset;
  const int32_t units = (channels + 15) / 16, tap_pairs = (taps + 1) / 2;
  const auto* unit = reinterpret_cast<const Unit*>(h + 1);
  const auto* w = reinterpret_cast<const __m256i*>(unit + units);
  int8_t zero_points[kMaxChannels];
  std::memset(zero_points, static_cast<int8_t>(-offset), static_cast<size_t>(channels));
  const Layer k{channels, taps, tap_pairs,
                w,        unit, simd::Narrow(p.output_offset, p.activation.min, p.activation.max)};
  const bool paired_tail = channels % 16 == 8;
  const int32_t full = channels / 16;
  const int32_t in_h = in.h, in_w = in.w, out_h = out.h, out_w = out.w;
  const int32_t f_h = f.h, f_w = f.w, dilation_h = p.dilation_h, dilation_w = p.dilation_w;
  const int32_t stride_h = p.stride_h, stride_w = p.stride_w;
  const int32_t pad_top = p.padding.top, pad_left = p.padding.left;
  int32_t tap_offset[2 * kMaxTapPairs];  // from the window's top-left pixel, in bytes
  for (int32_t ky = 0; ky < f_h; ++ky) {
    for (int32_t kx = 0; kx < f_w; ++kx) {
      tap_offset[ky * f_w + kx] = (ky * dilation_h * in_w + kx * dilation_w) * channels;
    }
  }
  // Results go straight to the output unless it overlaps the input: then through
  // `result`, so that every read of a block's pixels precedes its writes (in_place.h).
  const auto in_begin = reinterpret_cast<uintptr_t>(input);
  const auto out_begin = reinterpret_cast<uintptr_t>(output);
  const bool overlap = out_begin < in_begin + static_cast<uintptr_t>(in.elements()) &&
                       in_begin < out_begin + static_cast<uintptr_t>(out.elements());
  const int8_t* tap[kPixels][2 * kMaxTapPairs];
  alignas(16) int8_t result[kPixels][kMaxChannels];
  // The rows, with the window's tap count fixed at compile time for 3x3 (kTaps 9) or not (0).
  const bool adjacent_pair = channels == 8 && stride_w == 1 && !overlap;
  auto rows = [&](auto taps_known) {
    constexpr int32_t kTaps = decltype(taps_known)::value;
    for (int32_t b = 0; b < in.n; ++b) {
      const int8_t* image = input + static_cast<int64_t>(b) * in_h * in_w * channels;
      for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t iy0 = oy * stride_h - pad_top;
        const bool rows_inside = iy0 >= 0 && iy0 + (f_h - 1) * dilation_h < in_h;
        for (int32_t ox = 0; ox < out_w; ox += kPixels) {
          const int32_t n = out_w - ox < kPixels ? out_w - ox : kPixels;
          // 8 channels, stride 1, both windows inside: the two pixels' taps are 8 bytes
          // apart, so one 16-byte load per tap serves both and the unit runs unpaired.
          if (adjacent_pair && n == 2 && rows_inside && ox - pad_left >= 0 &&
              ox + 1 - pad_left + (f_w - 1) * dilation_w < in_w) {
            const int8_t* corner = image + (iy0 * in_w + ox - pad_left) * channels;
            for (int32_t t = 0; t < taps; ++t) tap[0][t] = corner + tap_offset[t];
            int8_t* o = output + ((static_cast<int64_t>(b) * out_h + oy) * out_w + ox) * channels;
            // Four pixels inside: the second pair's taps 16 bytes on, the weights shared.
            if (ox + 3 < out_w && ox + 3 - pad_left + (f_w - 1) * dilation_w < in_w) {
              for (int32_t t = 0; t < taps; ++t) tap[1][t] = tap[0][t] + 16;
              run_unit_x2<kTaps>(k, 0, tap[0], tap[1], o, o + 16);
              ox += kPixels;
              continue;
            }
            run_unit<false, kTaps>(k, 0, tap[0], tap[0], o);
            continue;
          }
          for (int32_t m = 0; m < kPixels; ++m) {
            const int32_t ix0 = (ox + (m < n ? m : 0)) * stride_w - pad_left;
            if (rows_inside && ix0 >= 0 && ix0 + (f_w - 1) * dilation_w < in_w) {
              const int8_t* corner = image + (iy0 * in_w + ix0) * channels;
              for (int32_t t = 0; t < taps; ++t) tap[m][t] = corner + tap_offset[t];
              continue;
            }
            for (int32_t ky = 0; ky < f_h; ++ky) {
              const int32_t iy = iy0 + ky * dilation_h;
              for (int32_t kx = 0; kx < f_w; ++kx) {
                const int32_t ix = ix0 + kx * dilation_w;
                const bool inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
                tap[m][ky * f_w + kx] = inside ? image + (iy * in_w + ix) * channels : zero_points;
              }
            }
          }
          int8_t* o = output + ((static_cast<int64_t>(b) * out_h + oy) * out_w + ox) * channels;
          int8_t* dst[kPixels] = {overlap ? result[0] : o, overlap ? result[1] : o + channels};
          if (n == 2) {
            for (int32_t u = 0; u < full; ++u) {
              run_unit_x2<kTaps>(k, u, tap[0], tap[1], dst[0] + u * 16, dst[1] + u * 16);
            }
          } else {
            for (int32_t u = 0; u < full; ++u) {
              run_unit<false, kTaps>(k, u, tap[0], tap[0], dst[0] + u * 16);
            }
          }
          if (paired_tail) {
            alignas(16) int8_t pair[16];
            run_unit<true, kTaps>(k, full, tap[0], tap[1], pair);
            std::memcpy(dst[0] + full * 16, pair, 8);
            if (n > 1) std::memcpy(dst[1] + full * 16, pair + 8, 8);
          }
          if (overlap) std::memcpy(o, result[0], static_cast<size_t>(channels));
          if (overlap && n > 1) std::memcpy(o + channels, result[1], static_cast<size_t>(channels));
        }
      }
    }
  };
  if (taps == 9) {
    rows(std::integral_constant<int32_t, 9>());
  } else {
    rows(std::integral_constant<int32_t, 0>());
  }
  return true;
}

}  // namespace

size_t depthwise_packed_bytes(const DepthwiseParams& p, const Dims& f) {
  return handled(p, f) ? layout_bytes(f.c, f.h * f.w) + 31 : 0;
}

bool depthwise_pack_into(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& f,
                         const int8_t* filter, const int32_t* bias, void* packed, size_t bytes) {
  const size_t need = depthwise_packed_bytes(p, f);
  if (need == 0 || !packed || bytes < need) return false;
  pack_layer(p, rq, f, filter, bias, align32(packed));
  return true;
}

bool depthwise_run_packed(const DepthwiseParams& p, const Dims& in, const int8_t* input,
                          const Dims& f, const Dims& out, int8_t* output, const void* packed) {
  return run_layer(p, in, input, f, out, output, align32(const_cast<void*>(packed)));
}

bool depthwise_packed(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& in,
                      const int8_t* input, const Dims& f, const int8_t* filter, const int32_t* bias,
                      const Dims& out, int8_t* output) {
  if (!handled(p, f)) return false;
  alignas(32) unsigned char layer[sizeof(Header) + kMaxUnits * sizeof(Unit) +
                                  kMaxUnits * kMaxTapPairs * 2 * sizeof(__m256i)];
  pack_layer(p, rq, f, filter, bias, layer);
  return run_layer(p, in, input, f, out, output, layer);
}

#else

bool depthwise_packed(const DepthwiseParams&, const PerChannelRequant&, const Dims&, const int8_t*,
                      const Dims&, const int8_t*, const int32_t*, const Dims&, int8_t*) {
  return false;
}

#endif

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
