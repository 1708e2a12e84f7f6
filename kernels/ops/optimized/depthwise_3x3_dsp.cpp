// DepthwiseConv2D 3x3 windows inside the image on Arm DSP cores (depthwise_3x3_dsp.h).
// The general DSP path (depthwise_dsp.cpp) rebuilds a list of (input, weight) offsets
// per pixel and widens every weight word per pixel; on few channels (mbv1 48x48x8) that
// overhead costs more than the MACs. Here, per layer: the weights are widened once into
// (w0, w2), (w1, w3) int16 pairs (SXTB16's layout), and the input offset is folded into
// the bias (every tap of an inside window is present, so acc = bias + offset * sum w +
// sum x * w exactly). Per 4 channels of a pixel, an unrolled window: LDR of the input
// word (the three columns at +0, +c, +2c by register offsets), LDRD of the widened
// weights, 2 SXTB16 and 4 SMLAxy: 8 instructions a tap. docs/kernels.md.
#include "depthwise_3x3_dsp.h"

#include "simd_dot.h"  // TINYFLEET_SIMD_ARM_DSP

namespace tinyfleet::kernels::TINYFLEET_OPT_NS::dsp {

#if defined(TINYFLEET_SIMD_ARM_DSP)

bool dw3x3_prepare(const int8_t* filter, const int32_t* bias, int32_t c, int32_t input_offset,
                   int32_t in_w, int32_t stride_w, const Requant* rq, Dw3x3* k) {
  if (c <= 0 || c % 4 != 0 || c > kDw3x3MaxChannels) return false;
  int32_t* wide = k->wide;
  for (int32_t g = 0; g < c; g += 4) {
    for (int32_t t = 0; t < 9; ++t, wide += 2) {
      const int8_t* w = filter + t * c + g;
      wide[0] = static_cast<int32_t>((static_cast<uint32_t>(w[0]) & 0xffffu) |
                                     (static_cast<uint32_t>(w[2]) << 16));
      wide[1] = static_cast<int32_t>((static_cast<uint32_t>(w[1]) & 0xffffu) |
                                     (static_cast<uint32_t>(w[3]) << 16));
    }
  }
  for (int32_t ch = 0; ch < c; ++ch) {
    int32_t sum = 0;
    for (int32_t t = 0; t < 9; ++t) sum += filter[t * c + ch];
    k->bias[ch] = (bias ? bias[ch] : 0) + input_offset * sum;
  }
  k->c = c;
  k->row_bytes = in_w * c;
  k->step = stride_w * c;
  k->rq = rq;
  return true;
}

#if defined(TINYFLEET_MUTANT_DEPTHWISE_3X3_DSP)  // the self-test's wrong variant: channel 3
#define TINYFLEET_DW3_LAST "smlatb"              // times channel 1's weight
#else
#define TINYFLEET_DW3_LAST "smlatt"
#endif

// One tap: input word at [x + COL], widened weights at [w + OFF].
#define TINYFLEET_DW3_TAP(COL, OFF)     \
  "ldr %[xo], [%[x]" COL                \
  "]\n"                                 \
  "ldrd %[we], %[wo], [%[w], #" #OFF    \
  "]\n"                                 \
  "sxtb16 %[xe], %[xo]\n"               \
  "sxtb16 %[xo], %[xo], ror #8\n"       \
  "smlabb %[a0], %[xe], %[we], %[a0]\n" \
  "smlatt %[a2], %[xe], %[we], %[a2]\n" \
  "smlabb %[a1], %[xo], %[wo], %[a1]\n" \
  "" TINYFLEET_DW3_LAST " %[a3], %[xo], %[wo], %[a3]\n"

#define TINYFLEET_DW3_ROW(O0, O1, O2) \
  TINYFLEET_DW3_TAP("", O0)           \
  TINYFLEET_DW3_TAP(", %[c]", O1) TINYFLEET_DW3_TAP(", %[c], lsl #1", O2) "add %[x], %[x], " \
                                                                          "%[rs]\n"

void dw3x3_span(const Dw3x3& k, const int8_t* corner, int32_t pixels, int8_t* out) {
  int32_t acc[kDw3x3MaxChannels];
  const int32_t c = k.c, rs = k.row_bytes, step = k.step;
  for (; pixels > 0; --pixels, corner += step, out += c) {
    const int32_t* w = k.wide;
    for (int32_t g = 0; g < c; g += 4, w += 18) {
      int32_t a0 = k.bias[g], a1 = k.bias[g + 1], a2 = k.bias[g + 2], a3 = k.bias[g + 3];
      const int8_t* x = corner + g;
      int32_t xe, xo, we, wo;
      __asm volatile(TINYFLEET_DW3_ROW(0, 8, 16) TINYFLEET_DW3_ROW(24, 32, 40)
                         TINYFLEET_DW3_ROW(48, 56, 64)
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x),
                       [xe] "=&r"(xe), [xo] "=&r"(xo), [we] "=&r"(we), [wo] "=&r"(wo)
                     : [w] "r"(w), [c] "r"(c), [rs] "r"(rs)
                     : "memory");
      acc[g] = a0;
      acc[g + 1] = a1;
      acc[g + 2] = a2;
      acc[g + 3] = a3;
    }
    requantize_run(*k.rq, acc, 0, c, out);
  }
}

#else

bool dw3x3_prepare(const int8_t*, const int32_t*, int32_t, int32_t, int32_t, int32_t,
                   const Requant*, Dw3x3*) {
  return false;
}

void dw3x3_span(const Dw3x3&, const int8_t*, int32_t, int8_t*) {}

#endif

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS::dsp
