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

// The requantization of a layer whose accumulators provably stay within +-2^30 and
// whose shifts all divide (by 2 to 2^30, no left shift), folded into the doubling high
// multiply: per 64-bit lane nudge = 2^30 + 2^(r-1) * 2^31 gives hm + 2^(r-1) with no
// int32 overflow, and TFLite's rounding divide (half away from zero) is then
// floor((hm + 2^(r-1) - [hm < 0]) / 2^r). [hm < 0] may be read as [acc < 0]: a negative
// accumulator gives hm <= 0, and where hm = 0 both round to 0.
struct Fast8 {
  __m256i nudge_even, nudge_odd;  // the nudges of the even lanes, and of the odd lanes
};

// The constants of one unit, in accumulator lane order.
struct Unit {
  __m256i bias_lo, bias_hi;
  simd::Requant8 lo, hi;
  Fast8 fast_lo, fast_hi;  // with Header::fast only
};

template <bool kFast>
inline __m256i requant(const simd::Requant8& r, const Fast8& f, __m256i acc) {
  if (!kFast) return r.apply(acc);
  const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(acc, r.m_even), f.nudge_even);
  const __m256i odd =
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(acc, 32), r.m_odd), f.nudge_odd);
  const __m256i rounded =
      _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xaa);
  return _mm256_srav_epi32(_mm256_add_epi32(rounded, _mm256_srai_epi32(acc, 31)), r.right);
}

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
template <bool kPair, int32_t kTaps, bool kFast>
inline void run_unit(const Layer& k, int32_t u, const int8_t* const* a, const int8_t* const* b,
                     int8_t* out) {
  const int32_t c0 = u * 16;
  const int32_t taps = kTaps > 0 ? kTaps : k.taps, tap_pairs = (taps + 1) / 2;
  const __m256i* w = k.w + u * tap_pairs * 2;
  const Unit& unit = k.unit[u];
  __m256i lo = unit.bias_lo, hi = unit.bias_hi;
  for (int32_t q = 0; q < tap_pairs; ++q) {
    const int32_t t0 = 2 * q,
                  t1 = 2 * q + 1 < taps ? 2 * q + 1 : 2 * q;  // weights 0 past the end
    const __m256i x0 = kPair ? widen8x2(a[t0] + c0, b[t0] + c0) : widen16(a[t0] + c0);
    const __m256i x1 = kPair ? widen8x2(a[t1] + c0, b[t1] + c0) : widen16(a[t1] + c0);
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), w[2 * q]));
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), w[2 * q + 1]));
  }
  k.narrow.store16_lanes(requant<kFast>(unit.lo, unit.fast_lo, lo),
                         requant<kFast>(unit.hi, unit.fast_hi, hi), out);
}

// Two pixels (16 channels each) of one unit: every weight and constant loaded once for
// both.
template <int32_t kTaps, bool kFast>
inline void run_unit_x2(const Layer& k, int32_t u, const int8_t* const* a, const int8_t* const* b,
                        int8_t* out_a, int8_t* out_b) {
  const int32_t c0 = u * 16;
  const int32_t taps = kTaps > 0 ? kTaps : k.taps, tap_pairs = (taps + 1) / 2;
  const __m256i* w = k.w + u * tap_pairs * 2;
  const Unit& unit = k.unit[u];
  __m256i lo_a = unit.bias_lo, hi_a = unit.bias_hi;
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
  k.narrow.store16_lanes(requant<kFast>(unit.lo, unit.fast_lo, lo_a),
                         requant<kFast>(unit.hi, unit.fast_hi, hi_a), out_a);
  k.narrow.store16_lanes(requant<kFast>(unit.lo, unit.fast_lo, lo_b),
                         requant<kFast>(unit.hi, unit.fast_hi, hi_b), out_b);
}

// The packed layout, from a 32-byte aligned start: this header, the constants of each
// unit, then the weights [unit][tap pair][lo, hi].
struct Header {
  uint32_t magic;
  int32_t channels, taps, offset;
  int32_t fast;  // 1: the units' Fast8 constants hold and requant<true> is exact
  int32_t unused[3];
};
constexpr uint32_t kMagic = 0x33766e64;  // "dnv3"

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

// Whether channel c's accumulators stay within +-2^30 (bias plus every tap at |x| <= 128,
// x being an input or a zero point) and its shift divides by 2 to 2^30: then
// requant<true> equals Requant8::apply.
bool fast_channel(const DepthwiseParams& p, const PerChannelRequant& rq, const int8_t* filter,
                  const int32_t* bias, int32_t channels, int32_t taps, int32_t c) {
  int64_t folded = bias ? bias[c] : 0, reach = 0;
  for (int32_t t = 0; t < taps; ++t) {
    const int32_t w = filter[t * channels + c];
    folded += int64_t{p.input_offset} * w;
    reach += 128 * int64_t{w < 0 ? -w : w};
  }
  const int64_t limit = int64_t{1} << 30;
  return (folded < 0 ? -folded : folded) + reach <= limit && rq.shift[c] <= -1 &&
         rq.shift[c] >= -30;
}

// Writes the layout at `at` (32-byte aligned); handled(p, f) must hold.
void pack_layer(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& f,
                const int8_t* filter, const int32_t* bias, void* at) {
  const int32_t channels = f.c, taps = f.h * f.w, offset = p.input_offset;
  const int32_t units = (channels + 15) / 16, tap_pairs = (taps + 1) / 2;
  bool fast = true;
  for (int32_t c = 0; c < channels; ++c) {
    fast = fast && fast_channel(p, rq, filter, bias, channels, taps, c);
  }
  auto* h = static_cast<Header*>(at);
  *h = Header{kMagic, channels, taps, offset, fast ? 1 : 0, {}};
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
      alignas(32) int64_t nudge[8];
      for (int32_t j = 0; j < 8; ++j) {
        const int32_t c = channel(lane_of(j, half == 1));
        uint32_t sum = bias ? static_cast<uint32_t>(bias[c]) : 0u;
        for (int32_t t = 0; t < taps; ++t) {
          sum += static_cast<uint32_t>(offset) * static_cast<uint32_t>(weight(t, c));
        }
        b[j] = static_cast<int32_t>(sum);
        m[j] = rq.multiplier[c];
        s[j] = rq.shift[c];
        nudge[j] = (int64_t{1} << 30) + (fast ? int64_t{1} << (-s[j] - 1 + 31) : 0);
      }
      const __m256i bv = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
      (half ? unit[u].bias_hi : unit[u].bias_lo) = bv;
      (half ? unit[u].hi : unit[u].lo) = simd::Requant8(m, s);
      Fast8& fast8 = half ? unit[u].fast_hi : unit[u].fast_lo;
      fast8.nudge_even = _mm256_setr_epi64x(nudge[0], nudge[2], nudge[4], nudge[6]);
      fast8.nudge_odd = _mm256_setr_epi64x(nudge[1], nudge[3], nudge[5], nudge[7]);
    }
  }
}

// One call's geometry, read into locals by run_rows: the output is stored through
// int8_t*, which may alias anything, so fields read through a reference or a lambda's
// captures would be reloaded after every store.
struct Frame {
  const int8_t* input;
  int8_t* output;
  const int8_t* zero_points;  // a pixel of input zero points (x = -offset) for taps outside
  const int32_t* tap_offset;  // from the window's top-left pixel, in bytes
  Dims in, out;
  int32_t f_h, f_w, dilation_h, dilation_w, stride_h, stride_w, pad_top, pad_left;
  bool overlap;  // output and input share bytes: results go through a pixel buffer
};

// The rows, with the window fixed at compile time as 3x3 (kTaps 9) or not (0).
template <int32_t kTaps, bool kFast>
void run_rows(const Layer& layer, const Frame& frame) {
  const Layer k = layer;
  const int8_t* const input = frame.input;
  int8_t* const output = frame.output;
  const int8_t* const zero_points = frame.zero_points;
  const int32_t* const tap_offset = frame.tap_offset;
  const int32_t channels = k.channels, taps = kTaps > 0 ? kTaps : k.taps;
  const int32_t batches = frame.in.n, in_h = frame.in.h, in_w = frame.in.w;
  const int32_t out_h = frame.out.h, out_w = frame.out.w;
  const int32_t f_h = kTaps == 9 ? 3 : frame.f_h, f_w = kTaps == 9 ? 3 : frame.f_w;
  const int32_t dilation_h = frame.dilation_h, dilation_w = frame.dilation_w;
  const int32_t stride_h = frame.stride_h, stride_w = frame.stride_w;
  const int32_t pad_top = frame.pad_top, pad_left = frame.pad_left;
  const bool overlap = frame.overlap;
  const bool paired_tail = channels % 16 == 8;
  const int32_t full = channels / 16;
  const bool adjacent_pair = channels == 8 && stride_w == 1 && !overlap;
  const int8_t* tap[kPixels][2 * kMaxTapPairs];
  alignas(16) int8_t result[kPixels][kMaxChannels];
  for (int32_t b = 0; b < batches; ++b) {
    const int8_t* image = input + static_cast<int64_t>(b) * in_h * in_w * channels;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t iy0 = oy * stride_h - pad_top;
      const bool rows_inside = iy0 >= 0 && iy0 + (f_h - 1) * dilation_h < in_h;
      int8_t* out_row = output + (static_cast<int64_t>(b) * out_h + oy) * out_w * channels;
      for (int32_t ox = 0; ox < out_w; ox += kPixels) {
        const int32_t n = out_w - ox < kPixels ? out_w - ox : kPixels;
        int8_t* o = out_row + static_cast<int64_t>(ox) * channels;
        // 8 channels, stride 1, both windows inside: the two pixels' taps are 8 bytes
        // apart, so one 16-byte load per tap serves both and the unit runs unpaired.
        if (adjacent_pair && n == 2 && rows_inside && ox - pad_left >= 0 &&
            ox + 1 - pad_left + (f_w - 1) * dilation_w < in_w) {
          const int8_t* corner = image + (iy0 * in_w + ox - pad_left) * channels;
          for (int32_t t = 0; t < taps; ++t) tap[0][t] = corner + tap_offset[t];
          // Four pixels inside: the second pair's taps 16 bytes on, the weights shared.
          if (ox + 3 < out_w && ox + 3 - pad_left + (f_w - 1) * dilation_w < in_w) {
            for (int32_t t = 0; t < taps; ++t) tap[1][t] = tap[0][t] + 16;
            run_unit_x2<kTaps, kFast>(k, 0, tap[0], tap[1], o, o + 16);
            ox += kPixels;
            continue;
          }
          run_unit<false, kTaps, kFast>(k, 0, tap[0], tap[0], o);
          continue;
        }
        for (int32_t m = 0; m < n; ++m) {
          const int32_t ix0 = (ox + m) * stride_w - pad_left;
          const int64_t corner = (int64_t{iy0} * in_w + ix0) * channels;
          if (rows_inside && ix0 >= 0 && ix0 + (f_w - 1) * dilation_w < in_w) {
            for (int32_t t = 0; t < taps; ++t) tap[m][t] = image + (corner + tap_offset[t]);
            continue;
          }
          // A window across the border: its taps outside the image read the zero points.
          bool column_inside[2 * kMaxTapPairs];
          for (int32_t kx = 0; kx < f_w; ++kx) {
            column_inside[kx] =
                static_cast<uint32_t>(ix0 + kx * dilation_w) < static_cast<uint32_t>(in_w);
          }
          for (int32_t ky = 0; ky < f_h; ++ky) {
            const bool row_inside =
                static_cast<uint32_t>(iy0 + ky * dilation_h) < static_cast<uint32_t>(in_h);
            for (int32_t kx = 0; kx < f_w; ++kx) {
              const int32_t t = ky * f_w + kx;
              tap[m][t] =
                  row_inside && column_inside[kx] ? image + (corner + tap_offset[t]) : zero_points;
            }
          }
        }
        int8_t* dst[kPixels] = {overlap ? result[0] : o, overlap ? result[1] : o + channels};
        if (n == 2) {
          for (int32_t u = 0; u < full; ++u) {
            run_unit_x2<kTaps, kFast>(k, u, tap[0], tap[1], dst[0] + u * 16, dst[1] + u * 16);
          }
        } else {
          for (int32_t u = 0; u < full; ++u) {
            run_unit<false, kTaps, kFast>(k, u, tap[0], tap[0], dst[0] + u * 16);
          }
        }
        if (paired_tail) {
          alignas(16) int8_t pair[16];
          run_unit<true, kTaps, kFast>(k, full, tap[0], tap[n > 1 ? 1 : 0], pair);
          std::memcpy(dst[0] + full * 16, pair, 8);
          if (n > 1) std::memcpy(dst[1] + full * 16, pair + 8, 8);
        }
        if (overlap) std::memcpy(o, result[0], static_cast<size_t>(channels));
        if (overlap && n > 1) std::memcpy(o + channels, result[1], static_cast<size_t>(channels));
      }
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
  alignas(16) int8_t zero_points[kMaxChannels];
  std::memset(zero_points, static_cast<int8_t>(-offset), static_cast<size_t>(channels));
  const Layer k{channels, taps, tap_pairs,
                w,        unit, simd::Narrow(p.output_offset, p.activation.min, p.activation.max)};
  int32_t tap_offset[2 * kMaxTapPairs];
  for (int32_t ky = 0; ky < f.h; ++ky) {
    for (int32_t kx = 0; kx < f.w; ++kx) {
      tap_offset[ky * f.w + kx] = (ky * p.dilation_h * in.w + kx * p.dilation_w) * channels;
    }
  }
  const auto in_begin = reinterpret_cast<uintptr_t>(input);
  const auto out_begin = reinterpret_cast<uintptr_t>(output);
  const bool overlap = out_begin < in_begin + static_cast<uintptr_t>(in.elements()) &&
                       in_begin < out_begin + static_cast<uintptr_t>(out.elements());
  const Frame frame{input,      output,     zero_points,   tap_offset,     in,
                    out,        f.h,        f.w,           p.dilation_h,   p.dilation_w,
                    p.stride_h, p.stride_w, p.padding.top, p.padding.left, overlap};
  const bool fast = h->fast != 0;
  if (f.h == 3 && f.w == 3) {
    fast ? run_rows<9, true>(k, frame) : run_rows<9, false>(k, frame);
  } else {
    fast ? run_rows<0, true>(k, frame) : run_rows<0, false>(k, frame);
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
