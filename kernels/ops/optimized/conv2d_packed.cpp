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

constexpr int32_t kMaxPackedValues = 36864;  // 72 KB of int16 weights
constexpr int32_t kMaxPairs = 1024;          // receptive fields up to 2048 values
constexpr int32_t kMaxBlocks = 32;           // 256 output channels
constexpr int32_t kPixels = 4;               // output pixels of a row computed together

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

// What every block of pixels uses: the packed weights and per-block constants.
struct Packed {
  const __m256i* w;  // blocks of `pairs` vectors: [block][pair][8 channels][2]
  int32_t pairs, blocks, full, out_c;
  const __m256i* bias;
  const simd::Requant8* requant;
  simd::Narrow narrow;
};

// M output pixels of one row (their receptive fields `stride` values apart): every
// weight vector loaded is used M times; two blocks (16 channels) share each broadcast.
template <int32_t M>
void run_pixels(const Packed& k, const int16_t* patches, int32_t stride, int8_t* o) {
  int32_t blk = 0;
  for (; blk + 2 <= k.full; blk += 2) {
    __m256i a0[M], a1[M];
    for (int32_t m = 0; m < M; ++m) a0[m] = k.bias[blk], a1[m] = k.bias[blk + 1];
    const __m256i* w0 = k.w + blk * k.pairs;
    const __m256i* w1 = w0 + k.pairs;
    for (int32_t kp = 0; kp < k.pairs; ++kp) {
      const __m256i v0 = _mm256_load_si256(w0 + kp), v1 = _mm256_load_si256(w1 + kp);
      for (int32_t m = 0; m < M; ++m) {
        const __m256i x = pair_at(patches + m * stride, kp);
        a0[m] = _mm256_add_epi32(a0[m], _mm256_madd_epi16(x, v0));
        a1[m] = _mm256_add_epi32(a1[m], _mm256_madd_epi16(x, v1));
      }
    }
    for (int32_t m = 0; m < M; ++m) {
      k.narrow.store16(k.requant[blk].apply(a0[m]), k.requant[blk + 1].apply(a1[m]),
                       o + m * k.out_c + blk * 8);
    }
  }
  for (; blk < k.blocks; ++blk) {
    __m256i a[M];
    for (int32_t m = 0; m < M; ++m) a[m] = k.bias[blk];
    const __m256i* w0 = k.w + blk * k.pairs;
    for (int32_t kp = 0; kp < k.pairs; ++kp) {
      const __m256i v0 = _mm256_load_si256(w0 + kp);
      for (int32_t m = 0; m < M; ++m) {
        a[m] = _mm256_add_epi32(a[m], _mm256_madd_epi16(pair_at(patches + m * stride, kp), v0));
      }
    }
    for (int32_t m = 0; m < M; ++m) {
      const __m256i v = k.requant[blk].apply(a[m]);
      int8_t* dst = o + m * k.out_c + blk * 8;
      if (blk < k.full) {
        k.narrow.store8(v, dst);
      } else {
        int8_t tail[8];
        k.narrow.store8(v, tail);
        std::memcpy(dst, tail, static_cast<size_t>(k.out_c - blk * 8));
      }
    }
  }
}

// The packed layout, from a 32-byte aligned start: this header, the biases of each
// block of 8 channels, their requantization constants, then the weights.
struct Header {
  uint32_t magic;
  int32_t k_len, out_c, pairs, blocks;
  int32_t unused[3];
};
constexpr uint32_t kMagic = 0x32766e63;  // "cnv2"

size_t layout_bytes(int32_t blocks, int32_t pairs) {
  return sizeof(Header) + static_cast<size_t>(blocks) * (sizeof(__m256i) + sizeof(simd::Requant8)) +
         static_cast<size_t>(blocks) * static_cast<size_t>(pairs) * sizeof(__m256i);
}

void* align32(void* p) {
  return reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(p) + 31) & ~uintptr_t{31});
}

// Writes the layout at `at` (32-byte aligned).
void pack_layer(const PerChannelRequant& rq, const Dims& f, const int8_t* filter,
                const int32_t* bias, void* at) {
  const int32_t k_len = f.h * f.w * f.c, pairs = (k_len + 1) / 2, out_c = f.n;
  const int32_t blocks = (out_c + 7) / 8;
  auto* h = static_cast<Header*>(at);
  *h = Header{kMagic, k_len, out_c, pairs, blocks, {}};
  auto* bias8 = reinterpret_cast<__m256i*>(h + 1);
  auto* requant = reinterpret_cast<simd::Requant8*>(bias8 + blocks);
  auto* packed = reinterpret_cast<int16_t*>(requant + blocks);
  for (int32_t blk = 0; blk < blocks; ++blk) {
    const int32_t c0 = blk * 8, n = out_c - c0 < 8 ? out_c - c0 : 8;
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
}

// Runs the layer packed at `at` (32-byte aligned); false if it holds another layer.
bool run_layer(const Conv2DParams& p, const Dims& in, const int8_t* input, const Dims& f,
               const Dims& out, int8_t* output, const void* at) {
  const auto* h = static_cast<const Header*>(at);
  if (h->magic != kMagic || h->k_len != f.h * f.w * f.c || h->out_c != out.c ||
      h->pairs > kMaxPairs) {
    return false;
  }
  const int32_t pairs = h->pairs, blocks = h->blocks;
  const auto* bias8 = reinterpret_cast<const __m256i*>(h + 1);
  const auto* requant = reinterpret_cast<const simd::Requant8*>(bias8 + blocks);
  // The receptive fields of up to kPixels pixels of a row (+ 16: a wide row's overhang).
  alignas(32) int16_t patches[kPixels * (2 * kMaxPairs + 16)];
  const int32_t stride = (2 * pairs + 16 + 15) / 16 * 16;
  const Packed k{reinterpret_cast<const __m256i*>(requant + blocks),
                 pairs,
                 blocks,
                 out.c / 8,
                 out.c,
                 bias8,
                 requant,
                 simd::Narrow(p.output_offset, p.activation.min, p.activation.max)};
  const Window g{in.h,
                 in.w,
                 in.c,
                 f.h,
                 f.w,
                 p.dilation_h,
                 p.dilation_w,
                 p.input_offset,
                 input + in.elements()};
  const int32_t out_h = out.h, out_w = out.w, batches = in.n;
  const int32_t stride_h = p.stride_h, stride_w = p.stride_w;
  const int32_t pad_top = p.padding.top, pad_left = p.padding.left;
  const bool pointwise8 = f.h == 1 && f.w == 1 && in.c <= 8 && pad_top == 0 && pad_left == 0;
  const __m128i offset8 = _mm_set1_epi16(static_cast<int16_t>(p.input_offset));
  const int32_t row_len = f.w * in.c, row_step = p.dilation_h * in.w * in.c;
  const int32_t last_row = (f.h - 1) * row_step;
  const int32_t chunks = p.dilation_w == 1 && row_len <= 64 ? (row_len + 15) / 16 : 0;
  const __m256i offset16 = _mm256_set1_epi16(static_cast<int16_t>(p.input_offset));
  for (int32_t b = 0; b < batches; ++b) {
    const int8_t* image = input + b * g.in_h * g.in_w * g.in_c;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      for (int32_t ox = 0; ox < out_w; ox += kPixels) {
        // Every read of the block's pixels before any of their writes (in_place.h).
        const int32_t n = out_w - ox < kPixels ? out_w - ox : kPixels;
        if (pointwise8 && oy * stride_h < g.in_h) {
          // 1x1 without padding, up to 8 channels: one 8-byte load per pixel when it stays
          // inside the input (the values past the field meet zero weights).
          const int8_t* src = image + (oy * stride_h * g.in_w + ox * stride_w) * g.in_c;
          const int32_t step = stride_w * g.in_c;
          for (int32_t m = 0; m < n; ++m, src += step) {
            if (src + 8 <= g.end) {
              const __m128i v =
                  _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src)));
              _mm_storeu_si128(reinterpret_cast<__m128i*>(patches + m * stride),
                               _mm_add_epi16(v, offset8));
            } else {
              simd::widen_with_offset(src, g.in_c, g.offset, patches + m * stride);
            }
          }
        } else {
          const int32_t iy0 = oy * stride_h - pad_top;
          for (int32_t m = 0; m < n; ++m) {
            const int32_t ix0 = (ox + m) * stride_w - pad_left;
            const int8_t* src = image + (iy0 * g.in_w + ix0) * g.in_c;
            // Window inside the image, rows of up to 64 values: 16-byte loads (each row's
            // overhang is overwritten by the next row, the last one's lands in the
            // patch's slack of 16 values).
            if (chunks > 0 && iy0 >= 0 && iy0 + (g.f_h - 1) * g.dilation_h < g.in_h && ix0 >= 0 &&
                ix0 + g.f_w <= g.in_w && src + last_row + 16 * chunks <= g.end) {
              int16_t* dst = patches + m * stride;
              for (int32_t ky = 0; ky < g.f_h; ++ky, src += row_step, dst += row_len) {
                for (int32_t q = 0; q < chunks; ++q) {
                  const __m256i v = _mm256_cvtepi8_epi16(
                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * q)));
                  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 16 * q),
                                      _mm256_add_epi16(v, offset16));
                }
              }
            } else {
              gather(g, image, iy0, ix0, patches + m * stride);
            }
          }
        }
        int8_t* o = output + ((b * out_h + oy) * out_w + ox) * out.c;
        switch (n) {
          case 4:
            run_pixels<4>(k, patches, stride, o);
            break;
          case 3:
            run_pixels<3>(k, patches, stride, o);
            break;
          case 2:
            run_pixels<2>(k, patches, stride, o);
            break;
          default:
            run_pixels<1>(k, patches, stride, o);
            break;
        }
      }
    }
  }
  return true;
}

}  // namespace

size_t conv2d_packed_bytes(const Dims& f) {
  const int32_t pairs = (f.h * f.w * f.c + 1) / 2;
  if (f.n <= 0 || pairs <= 0 || pairs > kMaxPairs) return 0;
  return layout_bytes((f.n + 7) / 8, pairs) + 31;
}

bool conv2d_pack_into(const PerChannelRequant& rq, const Dims& f, const int8_t* filter,
                      const int32_t* bias, void* packed, size_t bytes) {
  const size_t need = conv2d_packed_bytes(f);
  if (need == 0 || !packed || bytes < need) return false;
  pack_layer(rq, f, filter, bias, align32(packed));
  return true;
}

bool conv2d_run_packed(const Conv2DParams& p, const Dims& in, const int8_t* input, const Dims& f,
                       const Dims& out, int8_t* output, const void* packed) {
  return run_layer(p, in, input, f, out, output, align32(const_cast<void*>(packed)));
}

bool conv2d_packed(const Conv2DParams& p, const PerChannelRequant& rq, const Dims& in,
                   const int8_t* input, const Dims& f, const int8_t* filter, const int32_t* bias,
                   const Dims& out, int8_t* output) {
  const int32_t k_len = f.h * f.w * f.c;
  const int32_t pairs = (k_len + 1) / 2;
  const int32_t blocks = (out.c + 7) / 8;
  if (pairs > kMaxPairs || blocks > kMaxBlocks || blocks * pairs * 16 > kMaxPackedValues) {
    return false;
  }
  alignas(32) unsigned char layer[sizeof(Header) +
                                  kMaxBlocks * (sizeof(__m256i) + sizeof(simd::Requant8)) +
                                  kMaxPackedValues * sizeof(int16_t)];
  pack_layer(rq, f, filter, bias, layer);
  return run_layer(p, in, input, f, out, output, layer);
}

#else

bool conv2d_packed(const Conv2DParams&, const PerChannelRequant&, const Dims&, const int8_t*,
                   const Dims&, const int8_t*, const int32_t*, const Dims&, int8_t*) {
  return false;
}

#endif

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
