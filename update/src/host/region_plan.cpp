#include "region_plan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

#include "tinyfleet/kernels/runtime/artifact_writer.h"

namespace tinyfleet::update {

namespace {

using storage::Error;
using storage::ErrorCode;
namespace range = update::range;

// Collects regions, merging a difference that continues the previous one in the base.
class RegionWriter {
 public:
  void literal(uint64_t from, uint64_t to) {
    if (from >= to) return;
    if (!out_.empty() && out_.back().kind == range::kLiteral && out_.back().to == from) {
      out_.back().to = to;
      return;
    }
    out_.push_back({range::kLiteral, from, to});
  }
  void difference(uint64_t from, uint64_t to, uint64_t base, uint8_t width) {
    if (from >= to) return;
    displacement_ = static_cast<int64_t>(base - from);
    has_displacement_ = true;
    if (!out_.empty()) {
      Region& last = out_.back();
      if (last.kind == range::kDifference && last.to == from && last.width == width &&
          last.base + (last.to - last.from) == base) {
        last.to = to;
        return;
      }
    }
    out_.push_back({range::kDifference, from, to, base, width});
  }
  void add(const Region& r) {
    if (r.kind == range::kScaled || r.kind == range::kScales) {
      displacement_ = static_cast<int64_t>(r.base - r.from);
      has_displacement_ = true;
    }
    out_.push_back(r);
  }
  // The displacement (base - target offset) of the last region read from the base.
  bool displacement(int64_t* d) const {
    *d = displacement_;
    return has_displacement_;
  }
  std::vector<Region> take() { return std::move(out_); }

 private:
  std::vector<Region> out_;
  int64_t displacement_ = 0;
  bool has_displacement_ = false;
};

// Finds, for bytes outside matched segments (the graph's tables, tensors that changed
// shape), matches in the base: first the previous region's alignment (the layouts
// usually agree), else as bsdiff does: seed with an exact 8-byte match, extend while
// the differences stay mostly zero; the rest is literal.
class BaseMatcher {
 public:
  BaseMatcher(const std::string& base, uint8_t width) : base_(base), width_(width) {
    for (uint64_t q = 0; q + kGram <= base.size(); ++q) {
      auto& v = index_[gram(base, q)];
      if (v.size() < kCandidates) v.push_back(q);
    }
  }
  void cover(const std::string& target, uint64_t from, uint64_t to, RegionWriter& w) const {
    if (from >= to) return;
    int64_t d = 0;
    if (w.displacement(&d) && aligned_is_better(target, from, to, d)) {
      w.difference(from, to, static_cast<uint64_t>(static_cast<int64_t>(from) + d), width_);
      return;
    }
    uint64_t p = from, lit = from;
    while (p + kGram <= to) {
      auto it = index_.find(gram(target, p));
      if (it == index_.end()) {
        ++p;
        continue;
      }
      uint64_t best_q = 0, best_len = 0;
      for (uint64_t q : it->second) {
        const uint64_t len = extend(target, p, to, q);
        if (len > best_len) best_len = len, best_q = q;
      }
      if (best_len < kGram) {
        ++p;
        continue;
      }
      w.literal(lit, p);
      w.difference(p, p + best_len, best_q, width_);
      p += best_len;
      lit = p;
    }
    w.literal(lit, to);
  }

 private:
  static constexpr uint64_t kGram = 8;
  static constexpr size_t kCandidates = 8;
  static uint64_t gram(const std::string& s, uint64_t at) {
    uint64_t v = 0;
    std::memcpy(&v, s.data() + at, kGram);
    return v;
  }
  // More than half the bytes equal at displacement d.
  bool aligned_is_better(const std::string& target, uint64_t from, uint64_t to, int64_t d) const {
    const int64_t at = static_cast<int64_t>(from) + d;
    if (at < 0 || static_cast<uint64_t>(at) + (to - from) > base_.size()) return false;
    uint64_t equal = 0;
    for (uint64_t i = 0; i < to - from; ++i) equal += target[from + i] == base_[at + i];
    return 2 * equal > to - from;
  }
  // The length that maximizes matches*2 - length (bsdiff's forward extension).
  uint64_t extend(const std::string& target, uint64_t p, uint64_t to, uint64_t q) const {
    int64_t score = 0, best = 0;
    uint64_t best_len = 0;
    for (uint64_t i = 0; p + i < to && q + i < base_.size(); ++i) {
      score += target[p + i] == base_[q + i] ? 1 : -1;
      if (score > best) best = score, best_len = i + 1;
      if (i + 1 - best_len > 64) break;
    }
    return best_len;
  }
  const std::string& base_;
  uint8_t width_;
  std::unordered_map<uint64_t, std::vector<uint64_t>> index_;
};

// Roughly what the range coder spends on a value (zero is nearly free in a run).
double bits(int64_t v) {
  return v == 0 ? 0.3 : 4 + 2 * std::log2(std::fabs(static_cast<double>(v)));
}

// An int32 segment as predictions from its base values plus residuals, when that is
// cheaper than its byte differences: biases and requantization multipliers scale by one
// ratio when calibration moves a layer's input or output scale, and element by element
// with the weight scales (remembered at `memory`) when the weights change.
std::optional<Region> scaled(const std::string& base, const std::string& target, uint64_t from,
                             uint64_t to, uint64_t base_at, uint8_t kind_flags,
                             const range::CodingState& memory_state, int64_t memory) {
  const uint64_t n = (to - from) / 4;
  double difference_bits = 0;  // a difference usually extends the region before it
  for (uint64_t i = 0; i < to - from; ++i) {
    difference_bits += bits(static_cast<int8_t>(target[from + i] - base[base_at + i]));
  }
  std::optional<Region> best;
  double best_bits = difference_bits;
  // The estimated cost of a candidate; the cheapest so far is kept.
  auto consider = [&](const range::RegionHeader& c) {
    double total = c.ratio == range::kOne && c.exponent == 30 ? 20 : 60;
    for (uint64_t j = 0; j < n && total < best_bits; ++j) {
      const auto p = static_cast<uint32_t>(
          range::predict_scaled(memory_state, c, word_at(base, base_at + 4 * j), j));
      total += bits(static_cast<int32_t>(static_cast<uint32_t>(word_at(target, from + 4 * j)) - p));
    }
    if (total < best_bits) {
      best_bits = total;
      best = Region{range::kScaled, from, to, base_at, 4, c.flags, c.ratio, c.exponent, c.memory};
    }
  };
  std::vector<uint8_t> flag_sets = {static_cast<uint8_t>(kind_flags & range::kNormalize)};
  if (memory >= 0) flag_sets.push_back(kind_flags | range::kFollows);
  const uint64_t step = std::max<uint64_t>(1, n / 64);
  for (const uint8_t flags : flag_sets) {
    // Candidate ratios: 1 (residuals are plain differences), and the one that predicts
    // each sampled element exactly after the per-element part.
    range::RegionHeader h;
    h.kind = range::kScaled;
    h.flags = flags;
    h.memory = static_cast<uint32_t>(std::max<int64_t>(memory, 0));
    h.ratio = static_cast<int32_t>(range::kOne);
    h.exponent = 30;
    consider(h);
    for (uint64_t i = 0; i < n; i += step) {
      const int32_t b = range::predict_scaled(memory_state, h, word_at(base, base_at + 4 * i), i);
      const int32_t t = word_at(target, from + 4 * i);
      if (b == 0 || t == 0) continue;
      const double r = static_cast<double>(t) / b;
      const int exponent = std::clamp(30 - std::ilogb(r), 0, static_cast<int>(range::kMaxExponent));
      const double q = std::nearbyint(std::ldexp(r, exponent));
      if (std::fabs(q) > INT32_MAX) continue;
      range::RegionHeader c = h;
      c.ratio = static_cast<int32_t>(q);
      c.exponent = static_cast<uint8_t>(exponent);
      consider(c);
    }
  }
  return best;
}

}  // namespace

storage::Expected<std::vector<Region>> plan_regions(
    const std::string& base, const std::string& target,
    const std::vector<ArtifactSegment>& base_segments,
    const std::vector<ArtifactSegment>& target_segments, const PlanOptions& options) {
  if (target.empty()) return Error{ErrorCode::kInvalidArgument, "the target artifact is empty"};
  std::vector<ArtifactSegment> targets = target_segments;
  std::map<std::string, const ArtifactSegment*> by_name;
  for (const auto& s : base_segments) {
    if (s.offset + s.size > base.size()) {
      return Error{ErrorCode::kInvalidArgument, "base segment '" + s.name + "' is out of range"};
    }
    by_name[s.name] = &s;
  }
  std::sort(targets.begin(), targets.end(),
            [](const ArtifactSegment& a, const ArtifactSegment& b) { return a.offset < b.offset; });
  // The content hash, when it ends the target, is recomputed by the decoder.
  uint64_t end = target.size();
  if (options.typed) {
    const int64_t hash = kernels::content_hash_offset(target);
    if (hash >= 0 && static_cast<uint64_t>(hash) + 32 == target.size()) end = hash;
  }
  using kernels::SegmentKind;
  // Float segments other segments follow: sent as scales regions, whose element-wise
  // ratios the decoder remembers (in the order it meets them, up to range::kMemory).
  struct Remembered {
    int64_t start = -1;  // -1: not (wholly) remembered
    uint64_t count = 0;
  };
  std::map<std::string, Remembered> followed;
  for (const auto& t : targets) {
    if (options.typed && !t.follows.empty()) followed[t.follows] = {};
  }
  auto memory_state = std::make_unique<range::CodingState>();
  memory_state->reset();
  RegionWriter w;
  const BaseMatcher matcher(base, options.typed ? 4 : 1);
  uint64_t pos = 0;
  for (const auto& t : targets) {
    if (t.offset < pos || t.offset + t.size > end) {
      return Error{ErrorCode::kInvalidArgument,
                   "target segment '" + t.name + "' overlaps another or is out of range"};
    }
    auto it = by_name.find(t.name);
    if (it == by_name.end() || it->second->size != t.size || it->second->kind != t.kind) continue;
    matcher.cover(target, pos, t.offset, w);
    const uint64_t from = t.offset, to = t.offset + t.size, at = it->second->offset;
    std::optional<Region> s;
    auto f = followed.find(t.name);
    if (f != followed.end() && t.kind == SegmentKind::kFloat32 && t.size % 4 == 0) {
      if (memory_state->remembered + t.size / 4 <= range::kMemory) {
        f->second = {memory_state->remembered, t.size / 4};
      }
      for (uint64_t i = 0; i < t.size; i += 4) {
        memory_state->remember(static_cast<uint32_t>(word_at(base, at + i)),
                               static_cast<uint32_t>(word_at(target, from + i)));
      }
      s = Region{range::kScales, from, to, at, 4};
    } else if (options.typed &&
               (t.kind == SegmentKind::kInt32 || t.kind == SegmentKind::kMultiplier) &&
               t.size % 4 == 0) {
      int64_t memory = -1;
      if (auto g = followed.find(t.follows);
          g != followed.end() && g->second.start >= 0 && g->second.count == t.size / 4) {
        memory = g->second.start;
      }
      uint8_t flags = t.kind == SegmentKind::kMultiplier ? range::kNormalize : 0;
      if (t.follows_inverse) flags |= range::kInverse;
      s = scaled(base, target, from, to, at, flags, *memory_state, memory);
    }
    if (s) {
      w.add(*s);
    } else {
      w.difference(from, to, at, options.typed && t.kind != SegmentKind::kInt8 ? 4 : 1);
    }
    pos = to;
  }
  matcher.cover(target, pos, end, w);
  if (end < target.size()) w.add({range::kContentHash, end, target.size()});
  return w.take();
}

}  // namespace tinyfleet::update
