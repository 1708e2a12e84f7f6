#pragma once

// NumPy .npy arrays and .npz archives (calibration and validation data). Written by
// hand: Debian 12 packages no C++ reader. Supports .npy format 1.0-3.0, little-endian
// f4, f8, i1, u1, i4, i8 and b1 in C order, and stored or deflated zip entries.
// Operator input: every size is bounded before anything is allocated, and every failure
// is an error naming the entry and what is wrong (docs/optimizer.md, "Data files").
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tinyfleet/optimizer_service/result.h"

namespace tinyfleet::optimizer_service {

// Bounds of an array and of an archive. An entry's declared size is refused above
// max_entry_bytes and above the archive's own size x max_ratio (a zip bomb), the sum of
// the entries above max_total_bytes; deflate output must match the declared size and CRC.
struct NpzLimits {
  uint64_t max_entry_bytes = 256ull << 20;
  uint64_t max_total_bytes = 512ull << 20;
  uint64_t max_ratio = 1100;  // deflate cannot exceed 1032:1; anything above is a lie
  size_t max_entries = 64;
};
constexpr size_t kMaxNpyRank = 8;
constexpr size_t kMaxNpyHeaderBytes = 64 * 1024;

struct NpyArray {
  std::vector<int64_t> shape;
  std::string dtype;           // as in the header, e.g. "<f4"
  std::vector<double> values;  // every element, converted
  int64_t size() const;
};

// Sample i (0 <= i < shape[0]) of an [N, C, H, W] array (or [N, C, L] or [N, K]) as floats in NHWC
// order, the layout the compiled graph and the kernels use.
std::vector<float> nhwc_sample(const NpyArray& x, int64_t i);

// A rank-1..8 array; shape () (a scalar) and a dimension over 2^40 are refused, as is a
// shape whose element count does not fit in the data that follows the header.
Result<NpyArray> parse_npy(const std::string& bytes, const std::string& what);
Result<std::map<std::string, NpyArray>> parse_npz(const std::string& bytes,
                                                  const NpzLimits& limits = {});
Result<std::map<std::string, NpyArray>> read_npz(const std::string& path);
Result<std::string> read_file(const std::string& path);

}  // namespace tinyfleet::optimizer_service
