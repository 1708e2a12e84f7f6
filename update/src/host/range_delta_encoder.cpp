// The TensorRange codec's encoder: the typed region plan, coded with the same models
// the device decodes with (range_model.h) by an LZMA-style binary range encoder.
#include <cmath>
#include <cstring>
#include <memory>

#include "region_plan.h"
#include "tinyfleet/update/delta_encoder.h"
#include "tinyfleet/update/range_model.h"

namespace tinyfleet::update {

namespace {

namespace range = update::range;

class RangeEncoder {
 public:
  int bit(range::Prob& prob, int b) {
    const uint32_t bound = (range_ >> range::kProbBits) * prob.p;
    if (b == 0) {
      range_ = bound;
      prob.update(0);
    } else {
      low_ += bound;
      range_ -= bound;
      prob.update(1);
    }
    normalize();
    return b;
  }
  int direct(int b) {
    range_ >>= 1;
    if (b) low_ += range_;
    normalize();
    return b;
  }
  void fail() { failed_ = true; }
  bool failed() const { return failed_; }
  // The coded bytes. Left out: the first byte the scheme always writes (a zero), and up
  // to four trailing zeros (the decoder reads zeros past the end): the final value is
  // the one in [low, low + range) with the most trailing zero bytes.
  std::string finish() {
    for (uint64_t mask = 0xFFFFFFFFu; mask != 0; mask >>= 8) {
      const uint64_t v = (low_ + mask) & ~mask;
      if (v < low_ + range_) {
        low_ = v;
        break;
      }
    }
    for (int i = 0; i < 5; ++i) shift_low();
    std::string out = out_.substr(1);
    for (int i = 0; i < 4 && !out.empty() && out.back() == '\0'; ++i) out.pop_back();
    return out;
  }

 private:
  void normalize() {
    while (range_ < range::kTop) {
      range_ <<= 8;
      shift_low();
    }
  }
  void shift_low() {
    if (static_cast<uint32_t>(low_) < 0xFF000000u || (low_ >> 32) != 0) {
      const auto carry = static_cast<uint8_t>(low_ >> 32);
      uint8_t temp = cache_;
      do {
        out_.push_back(static_cast<char>(static_cast<uint8_t>(temp + carry)));
        temp = 0xFF;
      } while (--cache_size_ != 0);
      cache_ = static_cast<uint8_t>(low_ >> 24);
    }
    ++cache_size_;
    low_ = (low_ & 0x00FFFFFFu) << 8;
  }
  uint64_t low_ = 0;
  uint32_t range_ = 0xFFFFFFFFu;
  uint8_t cache_ = 0;
  uint64_t cache_size_ = 1;
  std::string out_;
  bool failed_ = false;
};

// Codes nothing; adds up what the range coder would spend (bits).
class CostCoder {
 public:
  int bit(range::Prob& prob, int b) {
    const uint32_t p0 = prob.p;
    cost += -std::log2((b ? (1u << range::kProbBits) - p0 : p0) /
                       static_cast<double>(1u << range::kProbBits));
    if (b == 0) {
      prob.update(0);
    } else {
      prob.update(1);
    }
    return b;
  }
  int direct(int b) {
    cost += 1;
    return b;
  }
  void fail() {}
  double cost = 0;
};

// One region, header and body, through either coder.
template <class C>
void code_region(C& c, range::CodingState& state, const Region& r, const std::string& base,
                 const std::string& target) {
  range::RegionHeader h;
  h.kind = r.kind;
  h.length = r.kind == range::kScaled ? (r.to - r.from) / 4 : r.to - r.from;
  h.displacement = r.kind == range::kLiteral || r.kind == range::kContentHash
                       ? state.displacement  // not sent: the coder's state stays as it is
                       : static_cast<int64_t>(r.base) - static_cast<int64_t>(r.from);
  h.width = r.width;
  h.flags = r.flags;
  h.ratio = r.ratio;
  h.exponent = r.exponent;
  h.memory = r.memory;
  range::code_header(c, state, h);
  for (uint64_t p = r.from; r.kind == range::kLiteral && p < r.to; ++p) {
    range::code_literal(c, state, static_cast<uint8_t>(target[p]));
  }
  for (uint64_t p = r.from; r.kind == range::kDifference && p < r.to; ++p) {
    const auto d = static_cast<uint8_t>(target[p] - base[r.base + (p - r.from)]);
    range::code_difference(c, state, r.width, p, d);
  }
  for (uint64_t p = r.from; r.kind == range::kScales && p < r.to; p += 4) {
    range::code_scale(c, state, static_cast<uint32_t>(word_at(base, r.base + (p - r.from))),
                      static_cast<uint32_t>(word_at(target, p)));
  }
  for (uint64_t p = r.from; r.kind == range::kScaled && p < r.to; p += 4) {
    const auto predicted = static_cast<uint32_t>(
        range::predict_scaled(state, h, word_at(base, r.base + (p - r.from)), (p - r.from) / 4));
    range::code_residual(
        c, state, static_cast<int32_t>(static_cast<uint32_t>(word_at(target, p)) - predicted));
  }
}

// What a region costs from this coder state.
double cost_of(const range::CodingState& state, const Region& r, const std::string& base,
               const std::string& target) {
  auto copy = std::make_unique<range::CodingState>(state);
  CostCoder c;
  code_region(c, *copy, r, base, target);
  return c.cost;
}

}  // namespace

storage::Expected<Delta> encode_tensor_range(const std::string& base, const std::string& target,
                                             const std::vector<ArtifactSegment>& base_segments,
                                             const std::vector<ArtifactSegment>& target_segments,
                                             const DeltaOptions&) {
  PlanOptions plan;
  plan.typed = true;
  auto regions = plan_regions(base, target, base_segments, target_segments, plan);
  if (!regions) return regions.error();
  RangeEncoder enc;
  auto owned = std::make_unique<range::CodingState>();
  range::CodingState& state = *owned;
  state.reset();
  for (const auto& r : *regions) {
    // The plan picked a ratio by a rough estimate; the coder's own cost decides
    // between it and plain differences.
    Region plain = r;
    plain.kind = range::kDifference;
    const bool scaled = r.kind == range::kScaled &&
                        cost_of(state, r, base, target) < cost_of(state, plain, base, target);
    code_region(enc, state, r.kind == range::kScaled && !scaled ? plain : r, base, target);
  }
  if (enc.failed()) {
    return storage::Error{storage::ErrorCode::kInternal,
                          "the range codec cannot express this target (a value out of range)"};
  }
  return Delta{update::DeltaCodec_TensorRange, enc.finish(), 0};
}

}  // namespace tinyfleet::update
