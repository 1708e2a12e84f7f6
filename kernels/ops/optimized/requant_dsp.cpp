// Requantization on Arm DSP cores (requant_dsp.h). With every shift in [-30, 0] an
// assembly loop, 28 instructions a channel: x = the doubling high multiply (SMLAL onto
// 2^30: TFLite's nudge is 2^30 for both signs once its truncating division is taken into
// account), q = x >> e, and TFLite's round-half-away-from-zero adds 1 when the remainder
// r = x - (q << e) minus the sign bit s of x is at least 2^(e-1): USAT(2(r - s) >> e, 1)
// is that bit (2(r - s) < 2^31 for e <= 30). Other shifts take TFLite's C arithmetic.
#include "requant_dsp.h"

#include "simd_dot.h"
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS::dsp {

bool requant_setup(const PerChannelRequant& rq, int32_t channels, int32_t out_offset,
                   const ActivationRange& activation, Requant* r) {
  bool right_only = true;
  for (int32_t ch = 0; ch < channels; ++ch) {
    if (rq.multiplier[ch] < 0) return false;
    right_only = right_only && rq.shift[ch] <= 0 && rq.shift[ch] >= -30;
  }
  *r = {rq.multiplier, rq.shift, out_offset, activation.min, activation.max, right_only};
  return true;
}

#if defined(TINYFLEET_SIMD_ARM_DSP)

namespace {

// A left shift (a real multiplier above 1) or a shift below -30 is rare: out of line.
__attribute__((noinline)) int8_t requantize_c(int32_t acc, int32_t multiplier, int32_t shift,
                                              int32_t offset, int32_t lo, int32_t hi) {
  int32_t v = multiply_by_quantized_multiplier(acc, multiplier, shift) + offset;
  v = v < lo ? lo : v;
  return static_cast<int8_t>(v > hi ? hi : v);
}

}  // namespace

void requantize_run(const Requant& r, const int32_t* acc, int32_t ch, int32_t n, int8_t* o) {
  const int32_t* m = r.multiplier + ch;
  const int32_t* s = r.shift + ch;
  const int32_t out_offset = r.out_offset, lo = r.lo, hi = r.hi;
  if (!r.right_only) {
    for (int32_t k = 0; k < n; ++k) o[k] = requantize_c(acc[k], m[k], s[k], out_offset, lo, hi);
    return;
  }
  if (n <= 0) return;
  const int32_t* end = acc + n;
  int32_t v, mm, l, h;
  __asm volatile(
      "1:\n"
      "ldr %[v], [%[acc]], #4\n"
      "ldr %[mm], [%[m]], #4\n"
      "mov %[l], #0x40000000\n"
      "mov %[h], #0\n"
      "smlal %[l], %[h], %[v], %[mm]\n"
      "ldr %[mm], [%[s]], #4\n"
      "lsrs %[l], %[l], #31\n"
      "orr %[l], %[l], %[h], lsl #1\n"
      "rsb %[mm], %[mm], #0\n"
      "asr %[h], %[l], %[mm]\n"
      "lsl %[v], %[h], %[mm]\n"
      "sub %[v], %[l], %[v]\n"
      "sub %[v], %[v], %[l], lsr #31\n"
      "lsl %[v], %[v], #1\n"
      "asr %[v], %[v], %[mm]\n"
      "usat %[v], #1, %[v]\n"
      "add %[h], %[h], %[v]\n"
      "add %[h], %[h], %[off]\n"
      "cmp %[h], %[lo]\n"
      "it lt\n"
      "movlt %[h], %[lo]\n"
      "cmp %[h], %[hi]\n"
      "it gt\n"
      "movgt %[h], %[hi]\n"
      "strb %[h], [%[o]], #1\n"
      "cmp %[acc], %[end]\n"
      "bne 1b\n"
      : [acc] "+r"(acc), [m] "+r"(m), [s] "+r"(s), [o] "+r"(o), [v] "=&r"(v), [mm] "=&r"(mm),
        [l] "=&r"(l), [h] "=&r"(h)
      : [end] "r"(end), [off] "r"(out_offset), [lo] "r"(lo), [hi] "r"(hi)
      : "cc", "memory");
}

#else

void requantize_run(const Requant& r, const int32_t* acc, int32_t ch, int32_t n, int8_t* o) {
  for (int32_t k = 0; k < n; ++k) {
    int32_t v = multiply_by_quantized_multiplier(acc[k], r.multiplier[ch + k], r.shift[ch + k]) +
                r.out_offset;
    v = v < r.lo ? r.lo : v;
    o[k] = static_cast<int8_t>(v > r.hi ? r.hi : v);
  }
}

#endif

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS::dsp
