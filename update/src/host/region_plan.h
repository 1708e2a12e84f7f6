#pragma once

// How a target artifact is cut into regions against its base, for the tensor codecs:
// segments matched by name become differences (or, for the range codec, int32 ratio
// predictions), the rest is matched approximately as bsdiff does, or sent literally.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tinyfleet/update/delta_encoder.h"
#include "tinyfleet/update/range_model.h"

namespace tinyfleet::update {

struct Region {
  uint8_t kind = range::kLiteral;
  uint64_t from = 0, to = 0;  // target bytes
  uint64_t base = 0;          // differences, scaled: where the bytes come from
  uint8_t width = 1;          // differences: 1 (int8 weights) or 4 (words)
  uint8_t flags = 0;          // scaled (range_model.h)
  int32_t ratio = 0;
  uint8_t exponent = 0;
  uint32_t memory = 0;  // scaled with kFollows: the first remembered ratio
};

// The little-endian 32-bit word at `at` (artifacts are little-endian).
inline int32_t word_at(const std::string& s, uint64_t at) {
  uint32_t v = 0;
  std::memcpy(&v, s.data() + at, 4);
  return static_cast<int32_t>(v);
}

struct PlanOptions {
  // Widths by segment kind, int32 segments as ratio predictions where that is smaller,
  // and the content hash as a region of its own: what the range codec can express.
  bool typed = false;
};

storage::Expected<std::vector<Region>> plan_regions(
    const std::string& base, const std::string& target,
    const std::vector<ArtifactSegment>& base_segments,
    const std::vector<ArtifactSegment>& target_segments, const PlanOptions& options);

}  // namespace tinyfleet::update
