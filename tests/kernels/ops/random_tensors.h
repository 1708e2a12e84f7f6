#pragma once

// Seeded random shapes, tensors and quantization parameters for the kernel tests.
#include <random>
#include <vector>

#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels::testing {

struct Rng {
  explicit Rng(uint32_t seed) : gen(seed) {}
  int32_t range(int32_t lo, int32_t hi) {  // inclusive
    return std::uniform_int_distribution<int32_t>(lo, hi)(gen);
  }
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(gen); }
  std::vector<int8_t> int8s(size_t n) {
    std::vector<int8_t> v(n);
    for (auto& x : v) x = static_cast<int8_t>(range(-128, 127));
    return v;
  }
  std::vector<int32_t> biases(size_t n, int32_t magnitude) {
    std::vector<int32_t> v(n);
    for (auto& x : v) x = range(-magnitude, magnitude);
    return v;
  }
  // Per-channel requantization from real multipliers between 2^-14 and 2 (so both
  // right and left shifts occur).
  void requant(size_t n, std::vector<int32_t>* mult, std::vector<int32_t>* shift) {
    mult->resize(n);
    shift->resize(n);
    for (size_t i = 0; i < n; ++i) {
      const double real = std::pow(2.0, uniform(-14.0f, 1.0f));
      int s = 0;
      quantize_multiplier(real, &(*mult)[i], &s);
      (*shift)[i] = s;
    }
  }
  // Zero points, with the extremes often.
  int32_t zero_point() {
    const int32_t pick = range(0, 5);
    return pick == 0 ? -128 : pick == 1 ? 127 : range(-128, 127);
  }
  ActivationRange activation() {
    const int32_t pick = range(0, 3);
    if (pick == 0) return {};
    const int32_t lo = range(-128, 0);
    return {lo, range(lo, 127)};
  }
  std::mt19937 gen;
};

}  // namespace tinyfleet::kernels::testing
