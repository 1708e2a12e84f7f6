// Add on Arm DSP cores (elementwise_dsp.h). In TFLite's Add each input is rescaled on its
// own before the sum: sa = MBQM((x + offset1) << left_shift, m1, s1) depends only on the
// int8 x, so its 256 values are a table computed once per call with the reference's own
// function (likewise sb), and an element is two byte loads, two table loads and an add.
// The sums, 32 at a time, go through requant_dsp's loop with the output multiplier in
// every lane (16 instructions an element instead of the C rounding). docs/kernels.md.
#include "elementwise_dsp.h"

#include "requant_dsp.h"
#include "simd_dot.h"  // TINYFLEET_SIMD_ARM_DSP
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

#if defined(TINYFLEET_SIMD_ARM_DSP)

namespace {

constexpr int64_t kMinSize = 256;  // below, the 512 table entries cost more than they save
constexpr int32_t kBlock = 32;     // sums requantized at a time

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
  if (size < kMinSize) return false;
  int32_t m[kBlock], s[kBlock];
  for (int32_t k = 0; k < kBlock; ++k) m[k] = p.output_multiplier, s[k] = p.output_shift;
  dsp::Requant r;
  if (!dsp::requant_setup({m, s}, kBlock, p.output_offset, p.activation, &r)) return false;
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
    dsp::requantize_run(r, acc, 0, n, out + i);
  }
  return true;
}

#else

bool add_dsp(const AddParams&, int64_t, const int8_t*, int64_t, const int8_t*, int8_t*) {
  return false;
}

#endif

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
