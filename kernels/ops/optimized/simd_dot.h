#pragma once

// Inner products of the optimized kernels: int16 activations (input + offset) times
// int8 weights, accumulated in int32. AVX2 when the build has it (TINYFLEET_OPT_NS is
// opt_scalar for the portable build of the same sources).
#include <cstdint>

#if defined(__AVX2__) && !defined(TINYFLEET_FORCE_SCALAR)
#include <immintrin.h>
#define TINYFLEET_SIMD_AVX2 1
#endif

#ifndef TINYFLEET_OPT_NS
#define TINYFLEET_OPT_NS opt
#endif

namespace tinyfleet::kernels::simd {

#if defined(TINYFLEET_SIMD_AVX2)
inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
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
  out[0] += hsum(acc0);
  out[1] += hsum(acc1);
  out[2] += hsum(acc2);
  out[3] += hsum(acc3);
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
#endif
  for (; i < n; ++i) dst[i] = static_cast<int16_t>(src[i] + offset);
}

}  // namespace tinyfleet::kernels::simd
