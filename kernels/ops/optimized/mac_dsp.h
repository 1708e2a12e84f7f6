#pragma once

// Inner products of the Conv2D and FullyConnected DSP paths (Cortex-M4/M7/M33). Four
// int8 values of a word become two int16 pairs: SXTB16 takes bytes 0 and 2, and after a
// rotation by 8 bytes 1 and 3, for inputs and weights alike, so SMLAD multiplies matching
// pairs: 2 SMLADs per 4 MACs, no shuffles. Inputs and weights are read as stored (int8,
// [channel][k] rows). In assembly so that the accumulators, pointers and unpacked pairs
// stay in registers. Internal linkage: each source file (and the self-test's wrong
// variants) gets its own copy.
#include <cstdint>

#include "simd_dot.h"

#if defined(TINYFLEET_SIMD_ARM_DSP)

namespace tinyfleet::kernels::dsp_mac {
namespace {

// A deliberately wrong variant for the self-test (kernels/firmware/CMakeLists.txt):
// pixel 1 of channel 1 takes its odd pair from pixel 0.
#if defined(TINYFLEET_MUTANT_CONV2D_DSP)
#define TINYFLEET_MAC2X2_LAST "smlad %[a11], %[xae], %[we], %[a11]\n"
#else
#define TINYFLEET_MAC2X2_LAST "smlad %[a11], %[xbo], %[wo], %[a11]\n"
#endif
// ... and channel 0 takes the even pair of the weights twice.
#if defined(TINYFLEET_MUTANT_FULLY_CONNECTED_DSP)
#define TINYFLEET_MAC1X2_LAST "smlad %[a0], %[xo], %[we], %[a0]\n"
#else
#define TINYFLEET_MAC1X2_LAST "smlad %[a0], %[xo], %[wo], %[a0]\n"
#endif

struct Acc2x2 {
  int32_t a00, a01, a10, a11;  // [pixel][channel]
};

// Two pixels x two output channels: acc[p][c] += sum_i x_p[i] * w_c[i], i < k, with
// x_0 = x, x_1 = x + k, w_0 = w, w_1 = w + k (rows of k bytes, any alignment). Each
// input and weight word is loaded once and used twice: 22 instructions per 16 MACs.
__attribute__((always_inline)) inline void mac2x2(const int8_t* x, const int8_t* w, int32_t k,
                                                  Acc2x2* acc) {
  int32_t a00 = acc->a00, a01 = acc->a01, a10 = acc->a10, a11 = acc->a11;
  const int32_t k4 = k & ~3;
  if (k4 > 0) {
    const int8_t* end = x + k4;
    int32_t xae, xao, xbe, xbo, we, wo;
    __asm volatile(
        "1:\n"
        "ldr %[xbe], [%[x], %[k]]\n"
        "ldr %[xae], [%[x]], #4\n"
        "sxtb16 %[xbo], %[xbe], ror #8\n"
        "sxtb16 %[xbe], %[xbe]\n"
        "sxtb16 %[xao], %[xae], ror #8\n"
        "sxtb16 %[xae], %[xae]\n"
        "ldr %[we], [%[w], %[k]]\n"
        "sxtb16 %[wo], %[we], ror #8\n"
        "sxtb16 %[we], %[we]\n"
        "smlad %[a01], %[xae], %[we], %[a01]\n"
        "smlad %[a01], %[xao], %[wo], %[a01]\n"
        "smlad %[a11], %[xbe], %[we], %[a11]\n" TINYFLEET_MAC2X2_LAST
        "ldr %[we], [%[w]], #4\n"
        "sxtb16 %[wo], %[we], ror #8\n"
        "sxtb16 %[we], %[we]\n"
        "smlad %[a00], %[xae], %[we], %[a00]\n"
        "smlad %[a00], %[xao], %[wo], %[a00]\n"
        "smlad %[a10], %[xbe], %[we], %[a10]\n"
        "smlad %[a10], %[xbo], %[wo], %[a10]\n"
        "cmp %[x], %[end]\n"
        "bne 1b\n"
        : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [x] "+r"(x),
          [w] "+r"(w), [xae] "=&r"(xae), [xao] "=&r"(xao), [xbe] "=&r"(xbe), [xbo] "=&r"(xbo),
          [we] "=&r"(we), [wo] "=&r"(wo)
        : [k] "r"(k), [end] "r"(end)
        : "cc", "memory");
  }
  for (int32_t i = 0; i < k - k4; ++i) {  // the last k % 4 (x and w point past the words)
    const int32_t x0 = x[i], x1 = x[k + i], w0 = w[i], w1 = w[k + i];
    a00 += x0 * w0;
    a01 += x0 * w1;
    a10 += x1 * w0;
    a11 += x1 * w1;
  }
  *acc = {a00, a01, a10, a11};
}

// One row x two output channels: a0 += sum_i (x[i] + offset) * w[i], a1 likewise with
// w + k; off2 holds the offset in both halfwords (SXTAB16 adds it while widening, so
// x + offset must fit int16). 15 instructions per 8 MACs.
__attribute__((always_inline)) inline void mac1x2(const int8_t* x, const int8_t* w, int32_t k,
                                                  int32_t offset, int32_t* acc0, int32_t* acc1) {
  int32_t a0 = *acc0, a1 = *acc1;
  const int32_t k4 = k & ~3;
  if (k4 > 0) {
    const int8_t* end = x + k4;
    const int32_t off2 = static_cast<int32_t>((static_cast<uint32_t>(offset) & 0xffffu) |
                                              (static_cast<uint32_t>(offset) << 16));
    int32_t xe, xo, we, wo;
    __asm volatile(
        "1:\n"
        "ldr %[xe], [%[x]], #4\n"
        "sxtab16 %[xo], %[off2], %[xe], ror #8\n"
        "sxtab16 %[xe], %[off2], %[xe]\n"
        "ldr %[we], [%[w], %[k]]\n"
        "sxtb16 %[wo], %[we], ror #8\n"
        "sxtb16 %[we], %[we]\n"
        "smlad %[a1], %[xe], %[we], %[a1]\n"
        "smlad %[a1], %[xo], %[wo], %[a1]\n"
        "ldr %[we], [%[w]], #4\n"
        "sxtb16 %[wo], %[we], ror #8\n"
        "sxtb16 %[we], %[we]\n"
        "smlad %[a0], %[xe], %[we], %[a0]\n" TINYFLEET_MAC1X2_LAST
        "cmp %[x], %[end]\n"
        "bne 1b\n"
        : [a0] "+r"(a0), [a1] "+r"(a1), [x] "+r"(x), [w] "+r"(w), [xe] "=&r"(xe), [xo] "=&r"(xo),
          [we] "=&r"(we), [wo] "=&r"(wo)
        : [k] "r"(k), [end] "r"(end), [off2] "r"(off2)
        : "cc", "memory");
  }
  for (int32_t i = 0; i < k - k4; ++i) {
    const int32_t xi = x[i] + offset;
    a0 += xi * w[i];
    a1 += xi * w[k + i];
  }
  *acc0 = a0;
  *acc1 = a1;
}

// One row x four output channels (w + c * k, c < 4), as mac1x2: the input pair is
// widened once for four channels, 25 instructions per 16 MACs.
__attribute__((always_inline)) inline void mac1x4(const int8_t* x, const int8_t* w, int32_t k,
                                                  int32_t offset, int32_t* acc) {
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  const int32_t k4 = k & ~3;
  const int8_t* w2 = w + 2 * k;
  if (k4 > 0) {
    const int8_t* end = x + k4;
    const int32_t off2 = static_cast<int32_t>((static_cast<uint32_t>(offset) & 0xffffu) |
                                              (static_cast<uint32_t>(offset) << 16));
    int32_t xe, xo, we, wo;
    __asm volatile(
        "1:\n"
        "ldr %[xe], [%[x]], #4\n"
        "sxtab16 %[xo], %[off2], %[xe], ror #8\n"
        "sxtab16 %[xe], %[off2], %[xe]\n"
        "ldr %[we], [%[w], %[k]]\n"
        "sxtb16 %[wo], %[we], ror #8\n"
        "sxtb16 %[we], %[we]\n"
        "smlad %[a1], %[xe], %[we], %[a1]\n"
        "smlad %[a1], %[xo], %[wo], %[a1]\n"
        "ldr %[we], [%[w]], #4\n"
        "sxtb16 %[wo], %[we], ror #8\n"
        "sxtb16 %[we], %[we]\n"
        "smlad %[a0], %[xe], %[we], %[a0]\n" TINYFLEET_MAC1X2_LAST
        "ldr %[we], [%[w2], %[k]]\n"
        "sxtb16 %[wo], %[we], ror #8\n"
        "sxtb16 %[we], %[we]\n"
        "smlad %[a3], %[xe], %[we], %[a3]\n"
        "smlad %[a3], %[xo], %[wo], %[a3]\n"
        "ldr %[we], [%[w2]], #4\n"
        "sxtb16 %[wo], %[we], ror #8\n"
        "sxtb16 %[we], %[we]\n"
        "smlad %[a2], %[xe], %[we], %[a2]\n"
        "smlad %[a2], %[xo], %[wo], %[a2]\n"
        "cmp %[x], %[end]\n"
        "bne 1b\n"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w),
          [w2] "+r"(w2), [xe] "=&r"(xe), [xo] "=&r"(xo), [we] "=&r"(we), [wo] "=&r"(wo)
        : [k] "r"(k), [end] "r"(end), [off2] "r"(off2)
        : "cc", "memory");
  }
  for (int32_t i = 0; i < k - k4; ++i) {
    const int32_t xi = x[i] + offset;
    a0 += xi * w[i];
    a1 += xi * w[k + i];
    a2 += xi * w2[i];
    a3 += xi * w2[k + i];
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

}  // namespace
}  // namespace tinyfleet::kernels::dsp_mac

#endif
