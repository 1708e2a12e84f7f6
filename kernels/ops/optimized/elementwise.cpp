// Optimized Add and Mul: TFLite's integer arithmetic on 8 elements at a time (AVX2),
// bit-exact with the reference; Add and Mul on Arm DSP cores (elementwise_dsp.h);
// other builds run the reference loop. Element i
// is read before it is written, so the output may sit on an input (in_place.h).
#include "tinyfleet/kernels/ops/elementwise.h"
#include "../common/conv_shapes.h"
#include "elementwise_dsp.h"
#include "requant_avx2.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

#if defined(TINYFLEET_SIMD_AVX2)
namespace {

inline __m256i load8(const int8_t* x) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x)));
}

// f(a, b) on 8 lanes for every full group of 8 (b broadcast when size2 == 1); returns
// how many elements it did.
template <typename F>
int64_t for_each8(int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
                  const simd::Narrow& narrow, int8_t* out, F f) {
  int64_t i = 0;
  const __m256i scalar2 = _mm256_set1_epi32(in2[0]);
  for (; i + 8 <= size; i += 8) {
    const __m256i b = size2 == 1 ? scalar2 : load8(in2 + i);
    narrow.store8(f(load8(in1 + i), b), out + i);
  }
  return i;
}

}  // namespace
#endif

Status add(const AddParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out) {
  if (size <= 0 || (size2 != size && size2 != 1) || !detail::activation_ok(p.activation)) {
    return Status::kBadShape;
  }
  if (add_dsp(p, size, in1, size2, in2, out)) return Status::kOk;  // Arm DSP
  int64_t done = 0;
#if defined(TINYFLEET_SIMD_AVX2)
  const simd::Requant8 r1 = simd::Requant8::uniform(p.input1_multiplier, p.input1_shift);
  const simd::Requant8 r2 = simd::Requant8::uniform(p.input2_multiplier, p.input2_shift);
  const simd::Requant8 ro = simd::Requant8::uniform(p.output_multiplier, p.output_shift);
  const __m256i off1 = _mm256_set1_epi32(p.input1_offset);
  const __m256i off2 = _mm256_set1_epi32(p.input2_offset);
  const __m128i left = _mm_cvtsi32_si128(p.left_shift);
  done = for_each8(size, in1, size2, in2,
                   simd::Narrow(p.output_offset, p.activation.min, p.activation.max), out,
                   [&](__m256i a, __m256i b) {
                     a = r1.apply(_mm256_sll_epi32(_mm256_add_epi32(a, off1), left));
                     b = r2.apply(_mm256_sll_epi32(_mm256_add_epi32(b, off2), left));
                     return ro.apply(_mm256_add_epi32(a, b));
                   });
  if (done == size) return Status::kOk;
#endif
  return ref::add(p, size - done, in1 + done, size2 == 1 ? 1 : size - done,
                  size2 == 1 ? in2 : in2 + done, out + done);
}

Status mul(const MulParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out) {
  if (size <= 0 || (size2 != size && size2 != 1) || !detail::activation_ok(p.activation)) {
    return Status::kBadShape;
  }
  if (mul_dsp(p, size, in1, size2, in2, out)) return Status::kOk;  // Arm DSP
  int64_t done = 0;
#if defined(TINYFLEET_SIMD_AVX2)
  const simd::Requant8 ro = simd::Requant8::uniform(p.output_multiplier, p.output_shift);
  const __m256i off1 = _mm256_set1_epi32(p.input1_offset);
  const __m256i off2 = _mm256_set1_epi32(p.input2_offset);
  done = for_each8(
      size, in1, size2, in2, simd::Narrow(p.output_offset, p.activation.min, p.activation.max), out,
      [&](__m256i a, __m256i b) {
        return ro.apply(_mm256_mullo_epi32(_mm256_add_epi32(a, off1), _mm256_add_epi32(b, off2)));
      });
  if (done == size) return Status::kOk;
#endif
  return ref::mul(p, size - done, in1 + done, size2 == 1 ? 1 : size - done,
                  size2 == 1 ? in2 : in2 + done, out + done);
}

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
