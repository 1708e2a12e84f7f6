#pragma once

// NumPy .npy arrays and .npz archives (calibration and validation data). Written by
// hand: Debian 12 packages no C++ reader. Supports .npy format 1.0-3.0, little-endian
// f4, f8, i1, u1, i4, i8 and b1 in C order, and stored or deflated zip entries.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tinyfleet/optimizer_service/result.h"

namespace tinyfleet::optimizer_service {

struct NpyArray {
  std::vector<int64_t> shape;
  std::string dtype;           // as in the header, e.g. "<f4"
  std::vector<double> values;  // every element, converted
  int64_t size() const;
};

// Sample i of an [N, C, H, W] array (or [N, C, L] or [N, K]) as floats in NHWC order, the layout
// the compiled graph and the kernels use.
std::vector<float> nhwc_sample(const NpyArray& x, int64_t i);

Result<NpyArray> parse_npy(const std::string& bytes, const std::string& what);
Result<std::map<std::string, NpyArray>> parse_npz(const std::string& bytes);
Result<std::map<std::string, NpyArray>> read_npz(const std::string& path);
Result<std::string> read_file(const std::string& path);

}  // namespace tinyfleet::optimizer_service
