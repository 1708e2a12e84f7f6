#pragma once

// The TensorRange delta codec's symbols and their adaptive models, shared by the
// server's encoder and the device's decoder. Every coding function takes a coder
// with `int bit(Prob& prob, int bit)`, `int direct(int bit)` and `void fail()`:
// the encoder codes the bit it is given and returns it, the decoder ignores it and
// returns the bit it decodes. One function serves both sides, so their models cannot
// drift apart.
//
// A payload is one range-coded stream of regions covering the target in order:
//   kind (0 literal, 1 difference, 2 scaled, 3 content hash, 4 scales), length,
//   for 1, 2 and 4: the base offset as a change of displacement (base - target offset)
//     against the previous region's, so regions that follow the layout cost ~0 bits,
//   for 1: the element width (1: int8 weights, 4: words), for 2: flags, ratio,
//     exponent and, with kFollows, the first remembered ratio it uses;
//   then the body: literal bytes, byte differences against the base (mod 256), int32
//   residuals against predict_scaled() (biases and requantization multipliers move by
//   one ratio when calibration changes, and with the weight scales), or float32s as
//   bit-pattern differences whose ratios to the base are remembered; a content hash
//   region is the last 32 bytes and carries nothing: the decoder writes sha256 of the
//   target with them zeroed.
#include <cstdint>

namespace tinyfleet::update::range {

constexpr int kProbBits = 12;
constexpr uint16_t kProbHalf = 1u << (kProbBits - 1);
constexpr uint32_t kTop = 1u << 24;
constexpr uint16_t kRateLimit = 20;

// The probability (of a 0, in kProbBits) of one modelled bit, and how often it was seen:
// it moves by 1/(n+2) of the way to each new bit (the mean of what it has seen, so a
// model learns from its first few symbols), then by 1/kRateLimit (it keeps adapting).
struct Prob {
  uint16_t p = kProbHalf;
  uint16_t n = 0;
  void update(int bit) {
    const int32_t target = bit ? 0 : int32_t{1} << kProbBits;
    p = static_cast<uint16_t>(p + (target - p) / (n + 2));
    if (n + 2 < kRateLimit) ++n;
  }
};

enum RegionKind : uint8_t {
  kLiteral = 0,
  kDifference = 1,
  kScaled = 2,
  kContentHash = 3,
  kScales = 4,  // float32s as differences of their bit patterns (int32); the decoder
                // remembers each one's ratio to the base
};
// Scaled-region flags.
constexpr uint8_t kNormalize = 1;  // Q31 multipliers kept in [2^30, 2^31)
constexpr uint8_t kFollows = 2;    // times the remembered ratios from `memory` on
constexpr uint8_t kInverse = 4;    // divided by them instead
constexpr uint8_t kAllFlags = kNormalize | kFollows | kInverse;
constexpr uint32_t kMaxExponent = 62;
constexpr int64_t kOne = int64_t{1} << 30;  // ratio 1.0 at exponent 30
constexpr uint32_t kMemory = 1024;  // remembered ratios (scales regions beyond it: not kept)

// An integer as: is it zero (4 contexts), its sign, its bit length - 1 (a 6-level
// binary tree), the two bits below the leading one modelled, the rest sent as they are.
// Magnitudes < 2^40.
struct IntModel {
  static constexpr int kLenBits = 6;
  static constexpr int kLen = 40;
  Prob zero[4];
  Prob sign;
  Prob len[1 << kLenBits];
  Prob mant[kLen][2];
};

// One model per field; differences by element width and byte position in a word.
enum Field : uint8_t {
  kKindField,
  kLengthField,
  kDisplacementField,
  kWidthField,
  kFlagsField,
  kRatioField,
  kExponentField,
  kMemoryField,
  kScaleField,
  kLiteralField,
  kWeightField,
  kWordField,  // + byte position 0..3
  kResidualField = kWordField + 4,
  kFieldCount
};

struct RegionHeader {
  uint8_t kind = kLiteral;
  uint64_t length = 0;       // bytes; elements (int32) for scaled regions
  int64_t displacement = 0;  // base offset - target offset (differences, scaled)
  uint8_t width = 1;         // differences: 1 or 4
  uint8_t flags = 0;         // scaled
  int32_t ratio = 0;         // scaled: prediction = base * ratio / 2^exponent
  uint8_t exponent = 0;
  uint32_t memory = 0;  // scaled with kFollows: the first remembered ratio
  uint64_t bytes() const { return kind == kScaled ? length * 4 : length; }
};

// A float's change as a ratio: Q30 mantissa ratio (in (2^29, 2^31)) and exponent
// difference; 1 when either is zero, subnormal, not finite or the sign flips.
struct Ratio {
  uint32_t q = 1u << 30;
  int16_t e = 0;
};
inline Ratio float_ratio(uint32_t base_bits, uint32_t target_bits) {
  const uint32_t eb = (base_bits >> 23) & 255, et = (target_bits >> 23) & 255;
  if (eb == 0 || eb == 255 || et == 0 || et == 255 || ((base_bits ^ target_bits) >> 31)) {
    return {};
  }
  const uint64_t mb = (base_bits & 0x7FFFFFu) | 0x800000u;
  const uint64_t mt = (target_bits & 0x7FFFFFu) | 0x800000u;
  return {static_cast<uint32_t>((mt << 30) / mb),
          static_cast<int16_t>(static_cast<int>(et) - static_cast<int>(eb))};
}

// Everything both sides must update the same way.
struct CodingState {
  IntModel models[kFieldCount];
  int64_t displacement = 0;  // of the last difference or scaled region
  uint32_t history = 0;      // bit i: the difference i + 1 values back was nonzero
  bool last_literal_zero = true;
  bool last_residual_zero = true;
  bool last_scale_zero = true;
  Ratio memory[kMemory];
  uint32_t remembered = 0;

  void remember(uint32_t base_bits, uint32_t target_bits) {
    if (remembered < kMemory) memory[remembered++] = float_ratio(base_bits, target_bits);
  }
  void reset() {
    remembered = 0;
    for (auto& m : models) m = IntModel{};
    displacement = 0;
    history = 0;
    last_literal_zero = last_residual_zero = last_scale_zero = true;
  }
};

template <class C>
uint64_t code_magnitude(C& c, IntModel& m, uint64_t a) {  // a >= 1 when encoding
  const int want_k = a ? 63 - __builtin_clzll(a) : 0;
  int node = 1;
  for (int i = IntModel::kLenBits - 1; i >= 0; --i) {
    node = (node << 1) | c.bit(m.len[node], (want_k >> i) & 1);
  }
  const int k = node - (1 << IntModel::kLenBits);
  if (k >= IntModel::kLen) return c.fail(), 1;
  uint64_t v = 1;
  for (int j = k - 1; j >= 0; --j) {
    const int want = static_cast<int>((a >> j) & 1);
    const int i = k - 1 - j;
    v = (v << 1) | static_cast<uint64_t>(i < 2 ? c.bit(m.mant[k][i], want) : c.direct(want));
  }
  return v;
}

template <class C>
uint64_t code_uint(C& c, IntModel& m, uint64_t v, int zero_context = 0) {
  if (!c.bit(m.zero[zero_context], v != 0)) return 0;
  return code_magnitude(c, m, v);
}

template <class C>
int64_t code_int(C& c, IntModel& m, int64_t v, int zero_context = 0) {
  if (!c.bit(m.zero[zero_context], v != 0)) return 0;
  const int negative = c.bit(m.sign, v < 0);
  const uint64_t a = code_magnitude(c, m, v < 0 ? 0 - static_cast<uint64_t>(v) : v);
  return negative ? -static_cast<int64_t>(a) : static_cast<int64_t>(a);
}

// A region's header. `target_offset` is where the region starts. False (and c.fail())
// when the decoded values are impossible.
template <class C>
bool code_header(C& c, CodingState& s, RegionHeader& h) {
  auto* m = s.models;
  h.kind = static_cast<uint8_t>(code_uint(c, m[kKindField], h.kind));
  if (h.kind > kScales) return c.fail(), false;
  h.length = code_uint(c, m[kLengthField], h.length);
  if (h.length == 0) return c.fail(), false;
  if (h.kind == kScales && h.length % 4 != 0) return c.fail(), false;
  if (h.kind == kDifference || h.kind == kScaled || h.kind == kScales) {
    h.displacement =
        s.displacement + code_int(c, m[kDisplacementField], h.displacement - s.displacement);
    s.displacement = h.displacement;
  }
  if (h.kind == kDifference) {
    h.width = static_cast<uint8_t>(code_uint(c, m[kWidthField], h.width));
    if (h.width != 1 && h.width != 4) return c.fail(), false;
  }
  if (h.kind == kScaled) {
    // Ratio and exponent relative to 1.0 (2^30 / 2^30): identity costs nearly nothing.
    h.flags = static_cast<uint8_t>(code_uint(c, m[kFlagsField], h.flags));
    const int64_t ratio = code_int(c, m[kRatioField], int64_t{h.ratio} - kOne) + kOne;
    const int64_t exponent = code_int(c, m[kExponentField], int64_t{h.exponent} - 30) + 30;
    if ((h.flags & ~kAllFlags) || ratio < INT32_MIN || ratio > INT32_MAX || exponent < 0 ||
        exponent > kMaxExponent) {
      return c.fail(), false;
    }
    h.exponent = static_cast<uint8_t>(exponent);
    h.ratio = static_cast<int32_t>(ratio);
    if (h.flags & kFollows) {
      const uint64_t at = code_uint(c, m[kMemoryField], h.memory);
      if (at > s.remembered || h.length > s.remembered - at) return c.fail(), false;
      h.memory = static_cast<uint32_t>(at);
    }
  }
  return true;
}

template <class C>
uint8_t code_literal(C& c, CodingState& s, uint8_t byte) {
  const uint64_t v = code_uint(c, s.models[kLiteralField], byte, s.last_literal_zero);
  if (v > 255) c.fail();
  s.last_literal_zero = v == 0;
  return static_cast<uint8_t>(v);
}

// The difference (target - base, as a signed byte) of the byte at `target_offset`.
template <class C>
uint8_t code_difference(C& c, CodingState& s, uint8_t width, uint64_t target_offset,
                        uint8_t difference) {
  const int context = width == 1 ? static_cast<int>(s.history & 3)
                                 : static_cast<int>((s.history & 1) | ((s.history >> 2) & 2));
  auto& m = s.models[width == 1 ? static_cast<int>(kWeightField)
                                : static_cast<int>(kWordField + (target_offset & 3))];
  const int64_t d = code_int(c, m, static_cast<int8_t>(difference), context);
  if (d < -128 || d > 127) c.fail();
  s.history = (s.history << 1) | (d != 0);
  return static_cast<uint8_t>(d);
}

// One float of a scales region: the difference of its bit pattern from the base's.
template <class C>
uint32_t code_scale(C& c, CodingState& s, uint32_t base_bits, uint32_t target_bits) {
  const int64_t d = code_int(c, s.models[kScaleField],
                             static_cast<int32_t>(target_bits - base_bits), s.last_scale_zero);
  if (d < INT32_MIN || d > INT32_MAX) c.fail();
  s.last_scale_zero = d == 0;
  const uint32_t t = base_bits + static_cast<uint32_t>(d);
  s.remember(base_bits, t);
  return t;
}

template <class C>
int32_t code_residual(C& c, CodingState& s, int32_t residual) {
  const int64_t r = code_int(c, s.models[kResidualField], residual, s.last_residual_zero);
  if (r < INT32_MIN || r > INT32_MAX) c.fail();
  s.last_residual_zero = r == 0;
  return static_cast<int32_t>(r);
}

namespace detail {
inline int64_t clamp32(int64_t p) {
  return p > INT32_MAX ? INT32_MAX : p < INT32_MIN ? INT32_MIN : p;
}
inline int64_t normalize_q31(int64_t p) {
  while (p >= (int64_t{1} << 31)) p = (p + 1) >> 1;
  while (p > 0 && p < (int64_t{1} << 30)) p <<= 1;
  return p;
}
// p * 2^e, rounded, saturated to int32.
inline int64_t times_pow2(int64_t p, int e) {
  if (e >= 0) {
    for (; e > 0 && p != 0; --e) p = clamp32(p * 2);
    return p;
  }
  if (e < -62) return 0;
  return (p + (int64_t{1} << (-e - 1))) >> -e;
}
}  // namespace detail

// The prediction of element `i` of a scaled region from its base value: with kFollows,
// times (or, kInverse, divided by) the remembered ratio of element i; then times
// ratio / 2^exponent, rounded. With kNormalize, a base in [2^30, 2^31) (a Q31
// multiplier) gives a prediction in that range (the shift beside it absorbs powers of
// two). Integer arithmetic only: devices and server agree bit for bit.
inline int32_t predict_scaled(const CodingState& s, const RegionHeader& h, int32_t base,
                              uint64_t i) {
  const bool normalize = (h.flags & kNormalize) && base >= (int32_t{1} << 30);
  int64_t p = base;
  if (h.flags & kFollows) {
    const Ratio r = s.memory[h.memory + i];
    if (h.flags & kInverse) {
      p = p * (int64_t{1} << 30) / r.q;
      if (!normalize) p = detail::times_pow2(p, -r.e);
    } else {
      p = (p * r.q + (int64_t{1} << 29)) >> 30;
      if (!normalize) p = detail::times_pow2(p, r.e);
    }
    p = detail::clamp32(normalize ? detail::normalize_q31(p) : p);
  }
  p *= h.ratio;
  if (h.exponent > 0) p = (p + (int64_t{1} << (h.exponent - 1))) >> h.exponent;
  if (normalize) p = detail::normalize_q31(p);
  return static_cast<int32_t>(detail::clamp32(p));
}

}  // namespace tinyfleet::update::range
