// Optimized DepthwiseConv2D. AVX2 builds take the packed path (depthwise_packed.cpp) for
// depth multiplier 1 and channels a multiple of 8, Arm DSP builds the SMLAxy path
// (depthwise_dsp.cpp) for depth multiplier 1; otherwise this one. NHWC keeps a
// pixel's channels contiguous, so each filter tap updates 16 channels' accumulators at
// once. AVX2: the accumulators stay in two registers across all taps of a pixel, and
// each tap is one 16 x int16 multiply ((x + offset) is within +-255 and w within +-128,
// so the product fits in int16), then widened into the int32 accumulators. Partial
// blocks and depth multiplier > 1 take a path through an accumulator array in the same
// loop order.
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"
#include "../common/conv_shapes.h"
#include "depthwise_dsp.h"
#include "depthwise_packed.h"
#include "requant_avx2.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

namespace {
constexpr int32_t kBlock = 16;

// acc[k] += (x[k] + offset) * w[k] for k < n (n <= kBlock).
inline void tap(const int8_t* x, const int8_t* w, int32_t offset, int32_t n, int32_t* acc) {
  int32_t k = 0;
#if defined(TINYFLEET_SIMD_AVX2)
  {
    const __m256i off = _mm256_set1_epi32(offset);
    for (; k + 8 <= n; k += 8) {
      const __m256i vx = _mm256_add_epi32(
          _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + k))), off);
      const __m256i vw =
          _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + k)));
      __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + k));
      va = _mm256_add_epi32(va, _mm256_mullo_epi32(vx, vw));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + k), va);
    }
  }
#endif
  for (; k < n; ++k) acc[k] += (x[k] + offset) * w[k];
}

#if defined(TINYFLEET_SIMD_AVX2)
// (x + offset) * w for 8 or 16 channels of one tap, widened and added to the int32
// accumulators (8 channels: lo only).
template <int32_t kN>
inline void tap16(const int8_t* x, const int8_t* w, __m256i off, __m256i* lo, __m256i* hi) {
  if constexpr (kN == 16) {
    const __m256i vx = _mm256_add_epi16(
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x))), off);
    const __m256i vw = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
    const __m256i prod = _mm256_mullo_epi16(vx, vw);
    *lo = _mm256_add_epi32(*lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(prod)));
    *hi = _mm256_add_epi32(*hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(prod, 1)));
  } else {
    const __m128i vx =
        _mm_add_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x))),
                      _mm256_castsi256_si128(off));
    const __m128i vw = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w)));
    *lo = _mm256_add_epi32(*lo, _mm256_cvtepi16_epi32(_mm_mullo_epi16(vx, vw)));
  }
}

// A whole block of kN (8 or 16) channels of one output pixel (depth multiplier 1),
// accumulated in registers; taps outside the input are skipped as in the general path
// (and not tested at all when the window lies inside the input).
template <int32_t kN>
inline void block(const DepthwiseParams& p, const Dims& in, const int8_t* input, const Dims& f,
                  const int8_t* filter, const int32_t* bias, int32_t b, int32_t iy0, int32_t ix0,
                  int32_t c0, __m256i* lo, __m256i* hi) {
  *lo = bias ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + c0))
             : _mm256_setzero_si256();
  *hi = bias && kN == 16 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + c0 + 8))
                         : _mm256_setzero_si256();
  const __m256i off = _mm256_set1_epi16(static_cast<int16_t>(p.input_offset));
  const int8_t* image = input + b * in.h * in.w * in.c + c0;
  const bool inside = iy0 >= 0 && ix0 >= 0 && iy0 + (f.h - 1) * p.dilation_h < in.h &&
                      ix0 + (f.w - 1) * p.dilation_w < in.w;
  for (int32_t ky = 0; ky < f.h; ++ky) {
    const int32_t iy = iy0 + ky * p.dilation_h;
    if (!inside && (iy < 0 || iy >= in.h)) continue;
    const int8_t* row = image + iy * in.w * in.c;
    const int8_t* wrow = filter + ky * f.w * f.c + c0;
    for (int32_t kx = 0; kx < f.w; ++kx) {
      const int32_t ix = ix0 + kx * p.dilation_w;
      if (!inside && (ix < 0 || ix >= in.w)) continue;
      tap16<kN>(row + ix * in.c, wrow + kx * f.c, off, lo, hi);
    }
  }
}
#endif
}  // namespace

Status depthwise_conv2d(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& in,
                        const int8_t* input, const Dims& f, const int8_t* filter,
                        const int32_t* bias, const Dims& out, int8_t* output) {
  const int32_t m = p.depth_multiplier;
  if (m <= 0 || f.n != 1 || f.c != in.c * m || !detail::conv_shapes_ok(p, in, f, out, f.c)) {
    return Status::kBadShape;
  }
  if (depthwise_packed(p, rq, in, input, f, filter, bias, out, output)) return Status::kOk;
  if (depthwise_dsp(p, rq, in, input, f, filter, bias, out, output)) return Status::kOk;
  int32_t acc[kBlock];
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      const int32_t iy0 = oy * p.stride_h - p.padding.top;
      for (int32_t ox = 0; ox < out.w; ++ox) {
        const int32_t ix0 = ox * p.stride_w - p.padding.left;
        int8_t* o = output + ((b * out.h + oy) * out.w + ox) * out.c;
        for (int32_t c0 = 0; c0 < out.c; c0 += kBlock) {
          const int32_t n = out.c - c0 < kBlock ? out.c - c0 : kBlock;
#if defined(TINYFLEET_SIMD_AVX2)
          if (m == 1 && (n == 16 || n == 8)) {
            __m256i lo, hi;
            if (n == 16) {
              block<16>(p, in, input, f, filter, bias, b, iy0, ix0, c0, &lo, &hi);
            } else {
              block<8>(p, in, input, f, filter, bias, b, iy0, ix0, c0, &lo, &hi);
            }
            simd::requantize8(lo, rq.multiplier + c0, rq.shift + c0, p.output_offset,
                              p.activation.min, p.activation.max, o + c0);
            if (n == 16) {
              simd::requantize8(hi, rq.multiplier + c0 + 8, rq.shift + c0 + 8, p.output_offset,
                                p.activation.min, p.activation.max, o + c0 + 8);
            }
            continue;
          }
#endif
          for (int32_t k = 0; k < n; ++k) acc[k] = bias ? bias[c0 + k] : 0;
          for (int32_t ky = 0; ky < f.h; ++ky) {
            const int32_t iy = iy0 + ky * p.dilation_h;
            if (iy < 0 || iy >= in.h) continue;
            for (int32_t kx = 0; kx < f.w; ++kx) {
              const int32_t ix = ix0 + kx * p.dilation_w;
              if (ix < 0 || ix >= in.w) continue;
              const int8_t* x = input + ((b * in.h + iy) * in.w + ix) * in.c;
              const int8_t* w = filter + (ky * f.w + kx) * f.c + c0;
              if (m == 1) {
                tap(x + c0, w, p.input_offset, n, acc);
              } else {
                for (int32_t k = 0; k < n; ++k) {
                  acc[k] += (x[(c0 + k) / m] + p.input_offset) * w[k];
                }
              }
            }
          }
          int32_t k = 0;
#if defined(TINYFLEET_SIMD_AVX2)
          for (; k + 8 <= n; k += 8) {
            simd::requantize8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + k)),
                              rq.multiplier + c0 + k, rq.shift + c0 + k, p.output_offset,
                              p.activation.min, p.activation.max, o + c0 + k);
          }
#endif
          for (; k < n; ++k) {
            o[c0 + k] = detail::requantize(acc[k], rq.multiplier[c0 + k], rq.shift[c0 + k],
                                           p.output_offset, p.activation);
          }
        }
      }
    }
  }
  return Status::kOk;
}

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
