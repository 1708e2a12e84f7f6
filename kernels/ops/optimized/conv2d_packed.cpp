// Conv2D with packed weights (see conv2d_packed.h). Per output pixel the receptive
// field is gathered once as int16 (x + offset, zero outside the image) and read as
// pairs of taps; the weights of 8 output channels are laid out [pair][channel][2], so
// _mm256_madd_epi16(broadcast pair, packed pair) adds both taps' products for 8 output
// channels, and the accumulators go to requantization as they are.
#include "conv2d_packed.h"

#include <cstring>

#include "../common/conv_shapes.h"
#include "requant_avx2.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

#if defined(TINYFLEET_SIMD_AVX2)
namespace {

constexpr int32_t kMaxPackedValues = 16384;  // 32 KB of int16 weights
constexpr int32_t kMaxPairs = 1024;          // receptive fields up to 2048 values
constexpr int32_t kMaxBlocks = 32;           // 256 output channels

// Weights of channels c0 .. c0 + n - 1 (n <= 8; absent channels and the tap after an
// odd-length field are zero) as [pair][8 channels][2] int16.
void pack_block(const int8_t* filter, int32_t k_len, int32_t pairs, int32_t c0, int32_t n,
                int16_t* dst) {
  int32_t kp = 0;
  if (n == 8) {
    const int8_t* rows = filter + c0 * k_len;
    for (; 2 * kp + 16 <= k_len; kp += 8) {
      __m128i r[8];
      for (int32_t c = 0; c < 8; ++c) {
        r[c] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + c * k_len + 2 * kp));
      }
      // A transpose of 8 x 8 two-byte pairs: t[j] is pair kp + j of channels 0..7.
      const __m128i a0 = _mm_unpacklo_epi16(r[0], r[1]), a1 = _mm_unpackhi_epi16(r[0], r[1]);
      const __m128i a2 = _mm_unpacklo_epi16(r[2], r[3]), a3 = _mm_unpackhi_epi16(r[2], r[3]);
      const __m128i a4 = _mm_unpacklo_epi16(r[4], r[5]), a5 = _mm_unpackhi_epi16(r[4], r[5]);
      const __m128i a6 = _mm_unpacklo_epi16(r[6], r[7]), a7 = _mm_unpackhi_epi16(r[6], r[7]);
      const __m128i b0 = _mm_unpacklo_epi32(a0, a2), b1 = _mm_unpackhi_epi32(a0, a2);
      const __m128i b2 = _mm_unpacklo_epi32(a1, a3), b3 = _mm_unpackhi_epi32(a1, a3);
      const __m128i b4 = _mm_unpacklo_epi32(a4, a6), b5 = _mm_unpackhi_epi32(a4, a6);
      const __m128i b6 = _mm_unpacklo_epi32(a5, a7), b7 = _mm_unpackhi_epi32(a5, a7);
      const __m128i t[8] = {_mm_unpacklo_epi64(b0, b4), _mm_unpackhi_epi64(b0, b4),
                            _mm_unpacklo_epi64(b1, b5), _mm_unpackhi_epi64(b1, b5),
                            _mm_unpacklo_epi64(b2, b6), _mm_unpackhi_epi64(b2, b6),
                            _mm_unpacklo_epi64(b3, b7), _mm_unpackhi_epi64(b3, b7)};
      for (int32_t j = 0; j < 8; ++j) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(dst + (kp + j) * 16),
                           _mm256_cvtepi8_epi16(t[j]));
      }
    }
  }
  for (; kp < pairs; ++kp) {
    for (int32_t c = 0; c < 8; ++c) {
      for (int32_t j = 0; j < 2; ++j) {
        const int32_t k = 2 * kp + j;
        dst[kp * 16 + c * 2 + j] = c < n && k < k_len ? filter[(c0 + c) * k_len + k] : 0;
      }
    }
  }
}

// The receptive-field geometry as plain values (the kernel's stores go through int8_t
// pointers, which may alias anything: fields read through references would be
// reloaded after every store).
struct Window {
  int32_t in_h, in_w, in_c, f_h, f_w, dilation_h, dilation_w, offset;
  const int8_t* end;  // one past the input: wide loads must stay before it
};

// (x + offset) over the receptive field whose top-left tap is (iy0, ix0), zero outside
// the image (padding is the zero point), and a zero after an odd-length field. Rows
// of up to 16 values inside the image are widened with one 16-byte load when it stays
// inside the input (the extra values land in the next row's place, or after the field).
void gather(const Window g, const int8_t* image, int32_t iy0, int32_t ix0, int16_t* patch) {
  const int32_t row_len = g.f_w * g.in_c;
  const bool columns_inside = g.dilation_w == 1 && ix0 >= 0 && ix0 + g.f_w <= g.in_w;
  const __m128i offset = _mm_set1_epi16(static_cast<int16_t>(g.offset));
  for (int32_t ky = 0; ky < g.f_h; ++ky) {
    const int32_t iy = iy0 + ky * g.dilation_h;
    int16_t* dst = patch + ky * row_len;
    if (iy < 0 || iy >= g.in_h) {
      std::memset(dst, 0, sizeof(int16_t) * static_cast<size_t>(row_len));
      continue;
    }
    const int8_t* row = image + iy * g.in_w * g.in_c;
    if (columns_inside) {
      const int8_t* src = row + ix0 * g.in_c;
      if (row_len <= 8 && src + 8 <= g.end) {
        const __m128i v = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_add_epi16(v, offset));
      } else if (row_len <= 16 && src + 16 <= g.end) {
        const __m256i v =
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),
                            _mm256_add_epi16(v, _mm256_set_m128i(offset, offset)));
      } else {
        simd::widen_with_offset(src, row_len, g.offset, dst);
      }
      continue;
    }
    for (int32_t kx = 0; kx < g.f_w; ++kx) {
      const int32_t ix = ix0 + kx * g.dilation_w;
      if (ix < 0 || ix >= g.in_w) {
        std::memset(dst + kx * g.in_c, 0, sizeof(int16_t) * static_cast<size_t>(g.in_c));
      } else {
        simd::widen_with_offset(row + ix * g.in_c, g.in_c, g.offset, dst + kx * g.in_c);
      }
    }
  }
  const int32_t k_len = g.f_h * row_len;
  if (k_len % 2 != 0) patch[k_len] = 0;
}

inline __m256i pair_at(const int16_t* patch, int32_t kp) {
  int32_t v;
  std::memcpy(&v, patch + 2 * kp, sizeof v);
  return _mm256_set1_epi32(v);
}

// 8 output channels: acc + sum over pairs; two partial sums halve the add chain.
inline __m256i dot8(const int16_t* patch, const __m256i* w, int32_t pairs, __m256i acc) {
  __m256i acc2 = _mm256_setzero_si256();
  int32_t kp = 0;
  for (; kp + 2 <= pairs; kp += 2) {
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pair_at(patch, kp), w[kp]));
    acc2 = _mm256_add_epi32(acc2, _mm256_madd_epi16(pair_at(patch, kp + 1), w[kp + 1]));
  }
  if (kp < pairs) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pair_at(patch, kp), w[kp]));
  return _mm256_add_epi32(acc, acc2);
}

// 16 output channels (two blocks) sharing each broadcast pair.
inline void dot16(const int16_t* patch, const __m256i* w0, const __m256i* w1, int32_t pairs,
                  __m256i* a0, __m256i* a1) {
  __m256i s0 = *a0, s1 = *a1;
  for (int32_t kp = 0; kp < pairs; ++kp) {
    const __m256i x = pair_at(patch, kp);
    s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(x, w0[kp]));
    s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(x, w1[kp]));
  }
  *a0 = s0;
  *a1 = s1;
}

}  // namespace

bool conv2d_packed(const Conv2DParams& p, const PerChannelRequant& rq, const Dims& in,
                   const int8_t* input, const Dims& f, const int8_t* filter, const int32_t* bias,
                   const Dims& out, int8_t* output) {
  const int32_t k_len = f.h * f.w * f.c;
  const int32_t pairs = (k_len + 1) / 2;
  const int32_t blocks = (out.c + 7) / 8, full = out.c / 8;
  if (pairs > kMaxPairs || blocks > kMaxBlocks || blocks * pairs * 16 > kMaxPackedValues) {
    return false;
  }
  alignas(32) int16_t packed[kMaxPackedValues];
  alignas(32) int16_t patch[2 * kMaxPairs + 16];  // + 16: a wide row load's overhang
  simd::Requant8 requant[kMaxBlocks];
  __m256i bias8[kMaxBlocks];
  for (int32_t blk = 0; blk < blocks; ++blk) {
    const int32_t c0 = blk * 8, n = out.c - c0 < 8 ? out.c - c0 : 8;
    pack_block(filter, k_len, pairs, c0, n, packed + blk * pairs * 16);
    alignas(32) int32_t b[8] = {}, m[8] = {}, s[8] = {};
    for (int32_t c = 0; c < n; ++c) {
      b[c] = bias ? bias[c0 + c] : 0;
      m[c] = rq.multiplier[c0 + c];
      s[c] = rq.shift[c0 + c];
    }
    bias8[blk] = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
    requant[blk] = simd::Requant8(m, s);
  }
  const auto* w = reinterpret_cast<const __m256i*>(packed);
  const simd::Narrow narrow(p.output_offset, p.activation.min, p.activation.max);
  const Window g{in.h,         in.w,         in.c, f.h, f.w, p.dilation_h, p.dilation_w,
                 p.input_offset, input + in.elements()};
  const int32_t out_h = out.h, out_w = out.w, out_c = out.c, batches = in.n;
  const int32_t stride_h = p.stride_h, stride_w = p.stride_w;
  const int32_t pad_top = p.padding.top, pad_left = p.padding.left;
  const int32_t pixels = out_h * out_w;
  for (int32_t b = 0; b < batches; ++b) {
    const int8_t* image = input + b * g.in_h * g.in_w * g.in_c;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      for (int32_t ox = 0; ox < out_w; ++ox) {
        gather(g, image, oy * stride_h - pad_top, ox * stride_w - pad_left, patch);
        int8_t* o = output + (b * pixels + oy * out_w + ox) * out_c;
        int32_t blk = 0;
        for (; blk + 2 <= full; blk += 2) {
          __m256i a0 = bias8[blk], a1 = bias8[blk + 1];
          dot16(patch, w + blk * pairs, w + (blk + 1) * pairs, pairs, &a0, &a1);
          narrow.store16(requant[blk].apply(a0), requant[blk + 1].apply(a1), o + blk * 8);
        }
        for (; blk < blocks; ++blk) {
          const __m256i a = requant[blk].apply(dot8(patch, w + blk * pairs, pairs, bias8[blk]));
          if (blk < full) {
            narrow.store8(a, o + blk * 8);
          } else {
            int8_t tail[8];
            narrow.store8(a, tail);
            std::memcpy(o + blk * 8, tail, static_cast<size_t>(out_c - blk * 8));
          }
        }
      }
    }
  }
  return true;
}

#else

bool conv2d_packed(const Conv2DParams&, const PerChannelRequant&, const Dims&, const int8_t*,
                   const Dims&, const int8_t*, const int32_t*, const Dims&, int8_t*) {
  return false;
}

#endif

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
