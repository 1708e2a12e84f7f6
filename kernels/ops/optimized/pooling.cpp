// Optimized pooling (AVX2; Arm DSP cores: pooling_dsp.h; other builds run the reference
// loops): NHWC keeps a
// pixel's channels contiguous, so each window tap is one vector per 32 or 16 (max) or
// 16 (average) channels. Windows are clipped to the image as in the reference, and a
// pixel's channels are all read and written before the next pixel (in_place.h).
#include <algorithm>

#include "../common/pool_shapes.h"
#include "pooling_dsp.h"
#include "requant_avx2.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

#if defined(TINYFLEET_SIMD_AVX2)
namespace {

struct Window {
  int32_t y0, y1, x0, x1;
};

inline Window clip(const PoolParams& p, const Dims& in, int32_t oy, int32_t ox) {
  const int32_t top = oy * p.stride_h - p.padding.top, left = ox * p.stride_w - p.padding.left;
  return {std::max<int32_t>(0, top), std::min<int32_t>(in.h, top + p.filter_h),
          std::max<int32_t>(0, left), std::min<int32_t>(in.w, left + p.filter_w)};
}

// f(image, window, output pixel) for every output pixel, in raster order.
template <typename F>
void for_each_window(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                     int8_t* output, F f) {
  for (int32_t b = 0; b < in.n; ++b) {
    const int8_t* image = input + static_cast<int64_t>(b) * in.h * in.w * in.c;
    for (int32_t oy = 0; oy < out.h; ++oy) {
      for (int32_t ox = 0; ox < out.w; ++ox) {
        f(image, clip(p, in, oy, ox),
          output + ((static_cast<int64_t>(b) * out.h + oy) * out.w + ox) * in.c);
      }
    }
  }
}

// Sums of up to 256 int8 values fit int16 ([-32768, 32512]).
constexpr int32_t kMaxAverageTaps = 256;

}  // namespace
#endif

Status max_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                  int8_t* output) {
  if (!detail::pool_shapes_ok(p, in, out)) return Status::kBadShape;
  if (max_pool_dsp(p, in, input, out, output)) return Status::kOk;  // Arm DSP
#if defined(TINYFLEET_SIMD_AVX2)
  const __m256i lo = _mm256_set1_epi8(static_cast<int8_t>(p.activation.min));
  const __m256i hi = _mm256_set1_epi8(static_cast<int8_t>(p.activation.max));
  const int32_t channels = in.c;
  for_each_window(p, in, input, out, output, [&](const int8_t* image, const Window w, int8_t* o) {
    int32_t c = 0;
    for (; c + 32 <= channels; c += 32) {
      __m256i m = _mm256_set1_epi8(-128);
      for (int32_t y = w.y0; y < w.y1; ++y) {
        for (int32_t x = w.x0; x < w.x1; ++x) {
          m = _mm256_max_epi8(m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                     image + (y * in.w + x) * channels + c)));
        }
      }
      m = _mm256_min_epi8(_mm256_max_epi8(m, lo), hi);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + c), m);
    }
    for (; c + 16 <= channels; c += 16) {
      __m128i m = _mm_set1_epi8(-128);
      for (int32_t y = w.y0; y < w.y1; ++y) {
        for (int32_t x = w.x0; x < w.x1; ++x) {
          m = _mm_max_epi8(m, _mm_loadu_si128(reinterpret_cast<const __m128i*>(
                                  image + (y * in.w + x) * channels + c)));
        }
      }
      m = _mm_min_epi8(_mm_max_epi8(m, _mm256_castsi256_si128(lo)), _mm256_castsi256_si128(hi));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + c), m);
    }
    for (; c < channels; ++c) {
      int32_t m = -128;
      for (int32_t y = w.y0; y < w.y1; ++y) {
        for (int32_t x = w.x0; x < w.x1; ++x) {
          m = std::max<int32_t>(m, image[(y * in.w + x) * channels + c]);
        }
      }
      o[c] = static_cast<int8_t>(std::min(std::max(m, p.activation.min), p.activation.max));
    }
  });
  return Status::kOk;
#else
  return ref::max_pool2d(p, in, input, out, output);
#endif
}

Status average_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                      int8_t* output) {
  if (!detail::pool_shapes_ok(p, in, out)) return Status::kBadShape;
  if (average_pool_dsp(p, in, input, out, output)) return Status::kOk;  // Arm DSP
#if defined(TINYFLEET_SIMD_AVX2)
  if (p.filter_h * p.filter_w > kMaxAverageTaps) {
    return ref::average_pool2d(p, in, input, out, output);
  }
  const simd::Narrow narrow(0, p.activation.min, p.activation.max);
  const int32_t channels = in.c;
  for_each_window(p, in, input, out, output, [&](const int8_t* image, const Window w, int8_t* o) {
    const int32_t count = (w.y1 - w.y0) * (w.x1 - w.x0);
    // (sum +- count / 2) / count, truncated: in float32 the quotient of two integers
    // below 2^16 and 2^8 is within half an ulp (2^-9 at 2^15) of the true one, which
    // is an integer or at least 1/count (>= 2^-8) away from one, so truncation agrees.
    const __m256i half = _mm256_set1_epi32(count / 2);
    const __m256 divisor = _mm256_set1_ps(static_cast<float>(count));
    auto average = [&](__m256i sum) {
      const __m256i neg = _mm256_cmpgt_epi32(_mm256_setzero_si256(), sum);
      const __m256i nudge = _mm256_sub_epi32(_mm256_xor_si256(half, neg), neg);  // +-half
      const __m256 q = _mm256_div_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(sum, nudge)), divisor);
      return count > 0 ? _mm256_cvttps_epi32(q) : _mm256_setzero_si256();
    };
    int32_t c = 0;
    for (; c + 16 <= channels; c += 16) {
      __m256i sum = _mm256_setzero_si256();
      for (int32_t y = w.y0; y < w.y1; ++y) {
        for (int32_t x = w.x0; x < w.x1; ++x) {
          sum = _mm256_add_epi16(
              sum, _mm256_cvtepi8_epi16(_mm_loadu_si128(
                       reinterpret_cast<const __m128i*>(image + (y * in.w + x) * channels + c))));
        }
      }
      narrow.store16(average(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(sum))),
                     average(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(sum, 1))), o + c);
    }
    for (; c < channels; ++c) {
      int32_t sum = 0;
      for (int32_t y = w.y0; y < w.y1; ++y) {
        for (int32_t x = w.x0; x < w.x1; ++x) sum += image[(y * in.w + x) * channels + c];
      }
      const int32_t avg = detail::rounded_average(sum, count);
      o[c] = static_cast<int8_t>(std::min(std::max(avg, p.activation.min), p.activation.max));
    }
  });
  return Status::kOk;
#else
  return ref::average_pool2d(p, in, input, out, output);
#endif
}

Status mean_hw(const MeanParams& p, const Dims& in, const int8_t* input, int8_t* output) {
  if (in.n <= 0 || in.h <= 0 || in.w <= 0 || in.c <= 0) return Status::kBadShape;
  if (mean_dsp(p, in, input, output)) return Status::kOk;  // Arm DSP
#if defined(TINYFLEET_SIMD_AVX2)
  const auto requant = simd::Requant8::uniform(p.multiplier, p.shift);
  const simd::Narrow narrow(p.output_offset, -128, 127);
  const int32_t channels = in.c, pixels = in.h * in.w;
  // sum(x + offset) = sum(x) + offset * pixels (int32 wraps alike).
  const __m256i offsets = _mm256_set1_epi32(
      static_cast<int32_t>(static_cast<uint32_t>(p.input_offset) * static_cast<uint32_t>(pixels)));
  for (int32_t b = 0; b < in.n; ++b) {
    const int8_t* image = input + static_cast<int64_t>(b) * pixels * channels;
    int32_t c = 0;
    for (; c + 8 <= channels; c += 8) {
      __m256i sum = offsets;
      for (int32_t i = 0; i < pixels; ++i) {
        sum = _mm256_add_epi32(
            sum, _mm256_cvtepi8_epi32(
                     _mm_loadl_epi64(reinterpret_cast<const __m128i*>(image + i * channels + c))));
      }
      narrow.store8(requant.apply(sum), output + b * channels + c);
    }
    for (; c < channels; ++c) {  // the last channels, as the reference
      int32_t sum = 0;
      for (int32_t i = 0; i < pixels; ++i) sum += image[i * channels + c] + p.input_offset;
      int32_t v = multiply_by_quantized_multiplier(sum, p.multiplier, p.shift) + p.output_offset;
      output[b * channels + c] = static_cast<int8_t>(std::min(std::max(v, -128), 127));
    }
  }
  return Status::kOk;
#else
  return ref::mean_hw(p, in, input, output);
#endif
}

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
