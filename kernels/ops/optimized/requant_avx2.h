#pragma once

// AVX2 requantization of int32 accumulators to int8, bit-exact with the scalar
// detail::requantize (TFLite's MultiplyByQuantizedMultiplier, + zero point, clamp).
// The per-channel constants of 8 channels are prepared once (Requant8) and applied to
// every pixel; narrowing goes through saturating packs, which equal the int32 clamp
// because every activation range lies inside int8.
#include "simd_dot.h"

#if defined(TINYFLEET_SIMD_AVX2)

namespace tinyfleet::kernels::TINYFLEET_OPT_NS::simd {

struct Requant8 {
  __m256i m_even, m_odd;  // the multipliers of the even lanes, and of the odd lanes moved down
  __m256i left, right;    // shift > 0 shifts left first; shift < 0 divides by 2^-shift
  __m256i mask, half;     // 2^right - 1 and its half (the rounding threshold)

  Requant8() = default;
  Requant8(const int32_t* multiplier, const int32_t* shift) {
    const __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(multiplier));
    const __m256i sh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(shift));
    const __m256i zero = _mm256_setzero_si256();
    m_even = m;
    m_odd = _mm256_srli_epi64(m, 32);
    left = _mm256_max_epi32(sh, zero);
    right = _mm256_max_epi32(_mm256_sub_epi32(zero, sh), zero);
    const __m256i one = _mm256_set1_epi32(1);
    mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    half = _mm256_srai_epi32(mask, 1);
  }
  // One multiplier and shift for all 8 lanes (per-tensor requantization).
  static Requant8 uniform(int32_t multiplier, int32_t shift) {
    alignas(32) int32_t m[8], s[8];
    for (int32_t i = 0; i < 8; ++i) m[i] = multiplier, s[i] = shift;
    return Requant8(m, s);
  }

  // The scaled accumulators, before the zero point. Multipliers are >= 0, so the one
  // saturating case of the doubling high multiply (INT32_MIN * INT32_MIN) cannot occur.
  __m256i apply(__m256i acc) const {
    const __m256i x = _mm256_sllv_epi32(acc, left);
    // Rounding doubling high multiply: TFLite's nudge (2^30, or 1 - 2^30 for negative
    // products) with truncating division equals floor((x * m + 2^30) / 2^31).
    const __m256i nudge = _mm256_set1_epi64x(int64_t{1} << 30);
    const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, m_even), nudge);
    const __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), m_odd), nudge);
    // Bits 31..62 of each product: the even ones moved down, the odd ones up by one.
    const __m256i hm =
        _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xaa);
    // Rounding divide by 2^right, half away from zero: + 1 when the remainder exceeds
    // half (half + 1 for negative values). Comparisons yield -1 for true.
    const __m256i zero = _mm256_setzero_si256();
    const __m256i threshold = _mm256_sub_epi32(half, _mm256_cmpgt_epi32(zero, hm));
    const __m256i remainder = _mm256_and_si256(hm, mask);
    return _mm256_sub_epi32(_mm256_srav_epi32(hm, right), _mm256_cmpgt_epi32(remainder, threshold));
  }
};

// Zero point, clamp and narrowing: saturating to int16, + zero point (saturating), to
// int8 (saturating), then the activation range. Every step is monotone and the range
// lies inside int8, so the result is clamp(v + offset, min, max).
struct Narrow {
  __m256i offset, min, max;
  Narrow(int32_t output_offset, int32_t act_min, int32_t act_max)
      : offset(_mm256_set1_epi16(static_cast<int16_t>(output_offset))),
        min(_mm256_set1_epi8(static_cast<int8_t>(act_min))),
        max(_mm256_set1_epi8(static_cast<int8_t>(act_max))) {}

  // 16 channels: a holds 0..7, b 8..15.
  void store16(__m256i a, __m256i b, int8_t* out) const {
    // Per 128-bit lane the low 8 bytes are (a0..3, b0..3), (a4..7, b4..7).
    store_low16(bytes(a, b), _mm256_setr_epi32(0, 4, 1, 5, 0, 4, 1, 5), out);
  }
  // 16 values held as lo = (0..3 | 8..11), hi = (4..7 | 12..15): the lane order of
  // _mm256_unpacklo/hi_epi16 products.
  void store16_lanes(__m256i lo, __m256i hi, int8_t* out) const {
    store_low16(bytes(lo, hi), _mm256_setr_epi32(0, 1, 4, 5, 0, 1, 4, 5), out);
  }
  void store8(__m256i a, int8_t* out) const {
    const __m256i v =
        _mm256_permutevar8x32_epi32(bytes(a, a), _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(v));
  }

 private:
  // clamp(v + offset) of a and b as bytes: per 128-bit lane, a's 4 then b's 4, twice.
  __m256i bytes(__m256i a, __m256i b) const {
    const __m256i words = _mm256_adds_epi16(_mm256_packs_epi32(a, b), offset);
    const __m256i v = _mm256_packs_epi16(words, words);
    return _mm256_min_epi8(_mm256_max_epi8(v, min), max);
  }
  static void store_low16(__m256i v, __m256i order, int8_t* out) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                     _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(v, order)));
  }
};

// 8 accumulators requantized and stored (per-call constants: for one-off blocks).
inline void requantize8(__m256i acc, const int32_t* multiplier, const int32_t* shift,
                        int32_t offset, int32_t act_min, int32_t act_max, int8_t* out) {
  Narrow(offset, act_min, act_max).store8(Requant8(multiplier, shift).apply(acc), out);
}

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS::simd

#endif
