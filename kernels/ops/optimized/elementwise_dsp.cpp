// Add on Arm DSP cores (elementwise_dsp.h). In TFLite's Add each input is rescaled on its
// own before the sum: sa = MBQM((x + offset1) << left_shift, m1, s1) depends only on the
// int8 x, so its 256 values are a table computed once per call with the reference's own
// function (likewise sb), and an element is two byte loads, two table loads and an add.
// The sums, 32 at a time, go through requant_dsp's loop with the output multiplier in
// every lane (16 instructions an element instead of the C rounding).
// Mul: four elements a word, (x + offset) widened in pairs by SXTAB16 (offsets are
// within -255..255, so the pairs fit int16) and multiplied by SMULBB/SMULTT; the
// products, 32 at a time, through the same loop; the last size % 4 elements by the
// reference. docs/kernels.md.
#include "elementwise_dsp.h"

#include <algorithm>
#include <cstring>

#include "requant_dsp.h"
#include "simd_dot.h"  // TINYFLEET_SIMD_ARM_DSP
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

#if defined(TINYFLEET_SIMD_ARM_DSP)

namespace {

constexpr int64_t kMinSize = 256;  // below, the 512 table entries cost more than they save
constexpr int32_t kBlock = dsp::kUniformBlock;  // sums requantized at a time

// t[x + 128] = the rescaled input x (TFLite's arithmetic).
void rescale_table(int32_t offset, int32_t left_shift, int32_t multiplier, int32_t shift,
                   int32_t* t) {
  for (int32_t x = -128; x < 128; ++x) {
    t[x + 128] =
        multiply_by_quantized_multiplier((x + offset) * (1 << left_shift), multiplier, shift);
  }
}

}  // namespace

bool add_dsp(const AddParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
             int8_t* out) {
  dsp::UniformRequant u;
  if (size < kMinSize || !dsp::uniform_requant_setup(p.output_multiplier, p.output_shift,
                                                     p.output_offset, p.activation, &u)) {
    return false;
  }
  int32_t t1[256], t2[256];
  rescale_table(p.input1_offset, p.left_shift, p.input1_multiplier, p.input1_shift, t1);
  rescale_table(p.input2_offset, p.left_shift, p.input2_multiplier, p.input2_shift, t2);
  const int32_t* c1 = t1 + 128;
#if defined(TINYFLEET_MUTANT_ELEMENTWISE_DSP)  // the self-test's wrong variant: input 2
  const int32_t* c2 = t2 + 127;                // read one table entry low
#else
  const int32_t* c2 = t2 + 128;
#endif
  int32_t acc[kBlock];
  const int32_t b = c2[in2[0]];  // the broadcast value, if size2 == 1
  for (int64_t i = 0; i < size; i += kBlock) {
    const int32_t n = size - i < kBlock ? static_cast<int32_t>(size - i) : kBlock;
    if (size2 == 1) {
      for (int32_t k = 0; k < n; ++k) acc[k] = c1[in1[i + k]] + b;
    } else {
      for (int32_t k = 0; k < n; ++k) acc[k] = c1[in1[i + k]] + c2[in2[i + k]];
    }
    dsp::requantize_uniform(u, acc, n, out + i);
  }
  return true;
}

#if defined(TINYFLEET_MUTANT_MUL_DSP)  // the self-test's wrong variant: element 3 of a
#define TINYFLEET_MUL_LAST "smultt %[p3], %[a], %[be]\n"  // word times element 2's
#else
#define TINYFLEET_MUL_LAST "smultt %[p3], %[a], %[b]\n"
#endif

bool mul_dsp(const MulParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
             int8_t* out) {
  dsp::UniformRequant u;
  if (size > (int64_t{1} << 30) || !dsp::uniform_requant_setup(p.output_multiplier, p.output_shift,
                                                               p.output_offset, p.activation, &u)) {
    return false;
  }
  // The offsets in both int16 lanes; a broadcast operand as a block of copies.
  const auto lanes = [](int32_t v) { return 0x00010001u * (static_cast<uint32_t>(v) & 0xffffu); };
  const uint32_t off1 = lanes(p.input1_offset), off2 = lanes(p.input2_offset);
  int8_t broadcast[kBlock];
  std::memset(broadcast, in2[0], kBlock);
  const auto words = static_cast<int32_t>(size & ~3);
  int32_t acc[kBlock];
  for (int32_t i = 0; i < words; i += kBlock) {
    const int32_t n = std::min(words - i, kBlock);
    const int8_t *a1 = in1 + i, *a2 = size2 == 1 ? broadcast : in2 + i;
    int32_t* s = acc;
    uint32_t a, b, ae, be, p2, p3;
    // Per word: (x + offset) of elements 0, 2 (e) and 1, 3 as int16 pairs, 4 products.
    __asm volatile(
        "1:\n"
        "ldr %[a], [%[a1]], #4\n"
        "ldr %[b], [%[a2]], #4\n"
        "sxtab16 %[ae], %[o1], %[a]\n"
        "sxtab16 %[a], %[o1], %[a], ror #8\n"
        "sxtab16 %[be], %[o2], %[b]\n"
        "sxtab16 %[b], %[o2], %[b], ror #8\n"
        "smultt %[p2], %[ae], %[be]\n"
        "smulbb %[ae], %[ae], %[be]\n" TINYFLEET_MUL_LAST
        "smulbb %[a], %[a], %[b]\n"
        "strd %[ae], %[a], [%[s]], #8\n"
        "strd %[p2], %[p3], [%[s]], #8\n"
        "cmp %[s], %[end]\n"
        "bne 1b\n"
        : [a1] "+r"(a1), [a2] "+r"(a2), [s] "+r"(s), [a] "=&r"(a), [b] "=&r"(b), [ae] "=&r"(ae),
          [be] "=&r"(be), [p2] "=&r"(p2), [p3] "=&r"(p3)
        : [o1] "r"(off1), [o2] "r"(off2), [end] "r"(acc + n)
        : "cc", "memory");
    dsp::requantize_uniform(u, acc, n, out + i);
  }
  if (words < size) {  // the last 1-3 elements
    ref::mul(p, size - words, in1 + words, size2 == 1 ? 1 : size - words,
             size2 == 1 ? in2 : in2 + words, out + words);
  }
  return true;
}

#else

bool add_dsp(const AddParams&, int64_t, const int8_t*, int64_t, const int8_t*, int8_t*) {
  return false;
}
bool mul_dsp(const MulParams&, int64_t, const int8_t*, int64_t, const int8_t*, int8_t*) {
  return false;
}

#endif

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
