#pragma once

// Inner products of the optimized kernels: int16 activations (input + offset) times
// int8 weights, accumulated in int32. AVX2 when the build has it, SMLAD on Arm cores
// with the DSP extension (TINYFLEET_OPT_NS is opt_scalar for the portable build of the
// same sources).
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) && !defined(TINYFLEET_FORCE_SCALAR)
#include <immintrin.h>
#define TINYFLEET_SIMD_AVX2 1
#elif defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && \
    !defined(TINYFLEET_FORCE_SCALAR)
// Cortex-M4/M7 (and M33/M55 with the DSP extension): SMLAD does two 16x16 multiplies
// and both adds in one cycle.
#include <arm_acle.h>
#define TINYFLEET_SIMD_ARM_DSP 1
#endif

#ifndef TINYFLEET_OPT_NS
#define TINYFLEET_OPT_NS opt
#endif

namespace tinyfleet::kernels::TINYFLEET_OPT_NS::simd {

#if defined(TINYFLEET_SIMD_AVX2)
inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}
#endif

#if defined(TINYFLEET_SIMD_ARM_DSP)
inline uint32_t load32(const void* p) {  // LDR; Cortex-M4 loads unaligned words
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// Four int16 activations a0..a3 as the pairs (a0, a2) and (a1, a3), the order SXTB16
// unpacks four int8 weights in: bytes (0, 2), then (1, 3) after a rotation by 8.
struct Pairs {
  int16x2_t even, odd;
};
inline Pairs pairs(const int16_t* a) {
  const uint32_t x01 = load32(a), x23 = load32(a + 2);
  return {static_cast<int16x2_t>((x01 & 0xffffu) | (x23 << 16)),
          static_cast<int16x2_t>((x01 >> 16) | (x23 & 0xffff0000u))};
}
inline int32_t smlad4(const Pairs& x, const int8_t* w, int32_t acc) {
  const uint32_t ww = load32(w);
  acc = __smlad(x.even, __sxtb16(static_cast<int8x4_t>(ww)), acc);
  return __smlad(x.odd, __sxtb16(static_cast<int8x4_t>((ww >> 8) | (ww << 24))), acc);
}
#endif

// Four dot products sharing the activations: out[k] += sum_i a[i] * w_k[i].
inline void dot4_s16_s8(const int16_t* a, const int8_t* w0, const int8_t* w1, const int8_t* w2,
                        const int8_t* w3, int32_t n, int32_t out[4]) {
  int32_t i = 0;
#if defined(TINYFLEET_SIMD_AVX2)
  __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  for (; i + 16 <= n; i += 16) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    auto widen = [&](const int8_t* w) {
      return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    };
    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(va, widen(w0)));
    acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(va, widen(w1)));
    acc2 = _mm256_add_epi32(acc2, _mm256_madd_epi16(va, widen(w2)));
    acc3 = _mm256_add_epi32(acc3, _mm256_madd_epi16(va, widen(w3)));
  }
  // An 8-wide step for the tail (patches of 3-channel images are 27 long).
  for (; i + 8 <= n; i += 8) {
    const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
    auto widen8 = [&](const int8_t* w) {
      return _mm256_castsi128_si256(
          _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + i))));
    };
    const __m256i va2 = _mm256_castsi128_si256(va);
    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(va2, widen8(w0)));
    acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(va2, widen8(w1)));
    acc2 = _mm256_add_epi32(acc2, _mm256_madd_epi16(va2, widen8(w2)));
    acc3 = _mm256_add_epi32(acc3, _mm256_madd_epi16(va2, widen8(w3)));
  }
  out[0] += hsum(acc0);
  out[1] += hsum(acc1);
  out[2] += hsum(acc2);
  out[3] += hsum(acc3);
#elif defined(TINYFLEET_SIMD_ARM_DSP)
  int32_t d0 = 0, d1 = 0, d2 = 0, d3 = 0;
  for (; i + 4 <= n; i += 4) {
    const Pairs x = pairs(a + i);
    d0 = smlad4(x, w0 + i, d0);
    d1 = smlad4(x, w1 + i, d1);
    d2 = smlad4(x, w2 + i, d2);
    d3 = smlad4(x, w3 + i, d3);
  }
  out[0] += d0;
  out[1] += d1;
  out[2] += d2;
  out[3] += d3;
#endif
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (; i < n; ++i) {
    const int32_t x = a[i];
    s0 += x * w0[i];
    s1 += x * w1[i];
    s2 += x * w2[i];
    s3 += x * w3[i];
  }
  out[0] += s0;
  out[1] += s1;
  out[2] += s2;
  out[3] += s3;
}

inline int32_t dot_s16_s8(const int16_t* a, const int8_t* w, int32_t n) {
  int32_t i = 0, sum = 0;
#if defined(TINYFLEET_SIMD_AVX2)
  __m256i acc = _mm256_setzero_si256();
  for (; i + 16 <= n; i += 16) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i vw =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(va, vw));
  }
  sum = hsum(acc);
#elif defined(TINYFLEET_SIMD_ARM_DSP)
  for (; i + 4 <= n; i += 4) sum = smlad4(pairs(a + i), w + i, sum);
#endif
  for (; i + 4 <= n; i += 4) {
    sum += a[i] * w[i] + a[i + 1] * w[i + 1] + a[i + 2] * w[i + 2] + a[i + 3] * w[i + 3];
  }
  for (; i < n; ++i) sum += a[i] * w[i];
  return sum;
}

// dst[i] = src[i] + offset, int8 -> int16.
inline void widen_with_offset(const int8_t* src, int32_t n, int32_t offset, int16_t* dst) {
  int32_t i = 0;
#if defined(TINYFLEET_SIMD_AVX2)
  const __m256i off = _mm256_set1_epi16(static_cast<int16_t>(offset));
  for (; i + 16 <= n; i += 16) {
    const __m256i v =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_add_epi16(v, off));
  }
  for (; i + 8 <= n; i += 8) {
    const __m128i v = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + i)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm_add_epi16(v, _mm256_castsi256_si128(off)));
  }
#endif
  for (; i < n; ++i) dst[i] = static_cast<int16_t>(src[i] + offset);
}

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS::simd
