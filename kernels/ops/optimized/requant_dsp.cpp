// Requantization on Arm DSP cores (requant_dsp.h): TFLite's
// x = SaturatingRoundingDoublingHighMul(acc, m), then RoundingDivideByPOT(x, e), e = -shift.
// TFLite's nudge of the doubling high multiply is 2^30 for both signs once its
// truncating division is taken into account, so x = (acc * m + 2^30) >> 31 (SMLAL).
//
// Short loop (e in 2..31, every layer's usual case; 16 instructions a channel, 21 with a
// clamp narrower than int8): the two roundings compose into one 64-bit sum. Nested floor
// divisions compose, and RoundingDivideByPOT is floor((x + 2^(e-1) - s) / 2^e) with s
// the sign bit of x, which is the sign bit of acc whenever it matters (acc < 0 with
// acc * m + 2^30 >= 0 gives 0 either way). So the result is the high word H of
// acc * m + 2^30 - s * 2^31 (SMLAL onto that), then (H + 2^(e-2)) >> (e-1), which
// cannot overflow (|H| <= 2^30).
// Round loop (e in 0..30, 28 instructions): q = x >> e, plus 1 when the remainder
// r = x - (q << e) minus s is at least 2^(e-1): USAT(2(r - s) >> e, 1) is that bit
// (2(r - s) < 2^31 for e <= 30). Other shifts take TFLite's C arithmetic.
#include "requant_dsp.h"

#include "simd_dot.h"
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS::dsp {

bool requant_setup(const PerChannelRequant& rq, int32_t channels, int32_t out_offset,
                   const ActivationRange& activation, Requant* r) {
  // One pass of min/max and an OR of the sign bits (this runs on every call).
  int32_t min_shift = 0, max_shift = -31;
  uint32_t signs = 0;
  for (int32_t ch = 0; ch < channels; ++ch) {
    const int32_t shift = rq.shift[ch];
    signs |= static_cast<uint32_t>(rq.multiplier[ch]);
    min_shift = shift < min_shift ? shift : min_shift;
    max_shift = shift > max_shift ? shift : max_shift;
  }
  if (signs >> 31) return false;
  Requant::Loop loop = Requant::Loop::kC;
  if (min_shift >= -31 && max_shift <= -2) {
    loop = Requant::Loop::kShort;
  } else if (min_shift >= -30 && max_shift <= 0) {
    loop = Requant::Loop::kRound;
  }
  *r = {rq.multiplier, rq.shift, out_offset, activation.min, activation.max, loop};
  return true;
}

// Built for size: at -O2 gcc unrolls the fill (140 B instead of 48) for a loop that runs
// once per call.
#if defined(__GNUC__) && !defined(__clang__)
#define TINYFLEET_FOR_SIZE __attribute__((optimize("Os")))
#else
#define TINYFLEET_FOR_SIZE
#endif
TINYFLEET_FOR_SIZE bool uniform_requant_setup(int32_t multiplier, int32_t shift, int32_t out_offset,
                                              const ActivationRange& activation,
                                              UniformRequant* u) {
  for (int32_t k = 0; k < kUniformBlock; ++k) u->multiplier[k] = multiplier, u->shift[k] = shift;
  return requant_setup({u->multiplier, u->shift}, kUniformBlock, out_offset, activation, &u->r);
}

#if defined(TINYFLEET_SIMD_ARM_DSP)

namespace {

// The self-test's wrong variant (kernels/firmware/CMakeLists.txt): the short loop adds
// half the rounding constant.
#if defined(TINYFLEET_MUTANT_REQUANT_DSP)
#define TINYFLEET_RQ_ROUND "add %[h], %[h], %[v], lsr #2\n"
constexpr int32_t kRoundShift = 2;
#else
#define TINYFLEET_RQ_ROUND "add %[h], %[h], %[v], lsr #1\n"
constexpr int32_t kRoundShift = 1;
#endif

// A left shift (a real multiplier above 1) or a shift below -30 is rare: out of line.
__attribute__((noinline)) int8_t requantize_c(int32_t acc, int32_t multiplier, int32_t shift,
                                              int32_t offset, int32_t lo, int32_t hi) {
  int32_t v = multiply_by_quantized_multiplier(acc, multiplier, shift) + offset;
  v = v < lo ? lo : v;
  return static_cast<int8_t>(v > hi ? hi : v);
}

// The short loop for one multiplier and shift (UniformRequant: the outputs of Add, Mul
// and Mean), its constants in registers: 12 instructions a value with SSAT, 16 with a
// clamp narrower than int8 (the per-channel loops: 16 and 21).
#define TINYFLEET_RQ_UNIFORM(CLAMP)                                                     \
  __asm volatile(                                                                       \
      "1:\n"                                                                            \
      "ldr %[v], [%[acc]], #4\n"                                                        \
      "asr %[h], %[v], #31\n"                                                           \
      "lsl %[l], %[h], #31\n"                                                           \
      "orr %[l], %[l], #0x40000000\n"                                                   \
      "smlal %[l], %[h], %[v], %[m]\n"                                                  \
      "add %[h], %[h], %[round]\n"                                                      \
      "asr %[h], %[h], %[e1]\n"                                                         \
      "add %[h], %[h], %[off]\n" CLAMP                                                  \
      "strb %[h], [%[o]], #1\n"                                                         \
      "cmp %[acc], %[end]\n"                                                            \
      "bne 1b\n"                                                                        \
      : [acc] "+r"(acc), [o] "+r"(o), [v] "=&r"(v), [l] "=&r"(l), [h] "=&r"(h)          \
      : [end] "r"(acc + n), [m] "r"(r.multiplier[0]), [round] "r"(round), [e1] "r"(e1), \
        [off] "r"(r.out_offset), [lo] "r"(r.lo), [hi] "r"(r.hi)                         \
      : "cc", "memory")

}  // namespace

void requantize_run(const Requant& r, const int32_t* acc, int32_t ch, int32_t n, int8_t* o) {
  const int32_t* m = r.multiplier + ch;
  const int32_t* s = r.shift + ch;
  const int32_t out_offset = r.out_offset, lo = r.lo, hi = r.hi;
  if (r.loop == Requant::Loop::kC) {
    for (int32_t k = 0; k < n; ++k) o[k] = requantize_c(acc[k], m[k], s[k], out_offset, lo, hi);
    return;
  }
  if (n <= 0) return;
  const int32_t* end = acc + n;
  int32_t v, mm, l, h;
  if (r.loop == Requant::Loop::kShort && lo == -128 && hi == 127) {
    __asm volatile(
        "1:\n"
        "ldr %[v], [%[acc]], #4\n"
        "ldr %[mm], [%[m]], #4\n"
        "asr %[h], %[v], #31\n"
        "lsl %[l], %[h], #31\n"
        "orr %[l], %[l], #0x40000000\n"
        "smlal %[l], %[h], %[v], %[mm]\n"
        "ldr %[mm], [%[s]], #4\n"
        "mvn %[mm], %[mm]\n"
        "lsl %[v], %[one], %[mm]\n" TINYFLEET_RQ_ROUND
        "asr %[h], %[h], %[mm]\n"
        "add %[h], %[h], %[off]\n"
        "ssat %[h], #8, %[h]\n"
        "strb %[h], [%[o]], #1\n"
        "cmp %[acc], %[end]\n"
        "bne 1b\n"
        : [acc] "+r"(acc), [m] "+r"(m), [s] "+r"(s), [o] "+r"(o), [v] "=&r"(v), [mm] "=&r"(mm),
          [l] "=&r"(l), [h] "=&r"(h)
        : [end] "r"(end), [off] "r"(out_offset), [one] "r"(1)
        : "cc", "memory");
    return;
  }
  if (r.loop == Requant::Loop::kShort) {
    __asm volatile(
        "1:\n"
        "ldr %[v], [%[acc]], #4\n"
        "ldr %[mm], [%[m]], #4\n"
        "asr %[h], %[v], #31\n"
        "lsl %[l], %[h], #31\n"
        "orr %[l], %[l], #0x40000000\n"
        "smlal %[l], %[h], %[v], %[mm]\n"
        "ldr %[mm], [%[s]], #4\n"
        "mvn %[mm], %[mm]\n"
        "lsl %[v], %[one], %[mm]\n" TINYFLEET_RQ_ROUND
        "asr %[h], %[h], %[mm]\n"
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
        : [end] "r"(end), [off] "r"(out_offset), [lo] "r"(lo), [hi] "r"(hi), [one] "r"(1)
        : "cc", "memory");
    return;
  }
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

void requantize_uniform(const UniformRequant& u, const int32_t* acc, int32_t n, int8_t* o) {
  const Requant& r = u.r;
  if (r.loop != Requant::Loop::kShort || n <= 0) {
    requantize_run(r, acc, 0, n, o);
    return;
  }
  const int32_t e1 = -r.shift[0] - 1, round = (1 << e1) >> kRoundShift;  // e - 1, 2^(e-2)
  int32_t v, l, h;
  if (r.lo == -128 && r.hi == 127) {
    TINYFLEET_RQ_UNIFORM("ssat %[h], #8, %[h]\n");
  } else {
    TINYFLEET_RQ_UNIFORM(
        "cmp %[h], %[lo]\n"
        "it lt\n"
        "movlt %[h], %[lo]\n"
        "cmp %[h], %[hi]\n"
        "it gt\n"
        "movgt %[h], %[hi]\n");
  }
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

void requantize_uniform(const UniformRequant& u, const int32_t* acc, int32_t n, int8_t* o) {
  requantize_run(u.r, acc, 0, n, o);
}

#endif

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS::dsp
