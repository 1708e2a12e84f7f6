#pragma once

// Shared vocabulary of the operators: shapes, quantization, activation ranges and
// the status every kernel returns. No heap, no exceptions: kernels run on Cortex-M.
#include <cstddef>
#include <cstdint>

namespace tinyfleet::kernels {

enum class Status : uint8_t {
  kOk = 0,
  kBadShape,         // dimensions inconsistent with each other or the operator
  kBadParams,        // a parameter outside what the operator supports
  kScratchTooSmall,  // the caller's scratch is below *_scratch_size()
};

const char* to_string(Status status);

// NHWC dimensions (CMSIS-NN's cmsis_nn_dims). Filters of Conv2D are [out_c, h, w, in_c];
// depthwise filters are [1, h, w, out_c]; fully-connected weights are [out, in] as n=out, c=in.
struct Dims {
  int32_t n = 1;
  int32_t h = 1;
  int32_t w = 1;
  int32_t c = 1;
  constexpr int64_t elements() const { return int64_t{n} * h * w * c; }
};

// Asymmetric per-tensor quantization: real = scale * (q - zero_point).
struct TensorQuant {
  float scale = 1.0f;
  int32_t zero_point = 0;
};
constexpr bool operator==(const TensorQuant& a, const TensorQuant& b) {
  return a.scale == b.scale && a.zero_point == b.zero_point;
}
constexpr bool operator!=(const TensorQuant& a, const TensorQuant& b) { return !(a == b); }

// Requantization of an int32 accumulator, one (multiplier, shift) per output channel:
// out = MultiplyByQuantizedMultiplier(acc, multiplier[c], shift[c]) (TFLite semantics;
// shift > 0 is a left shift).
struct PerChannelRequant {
  const int32_t* multiplier = nullptr;
  const int32_t* shift = nullptr;
};

// The int8 output clamp implementing a fused ReLU / ReLU6 / none.
struct ActivationRange {
  int32_t min = -128;
  int32_t max = 127;
};

struct FloatRange {
  float min = -3.4e38f;
  float max = 3.4e38f;
};

struct Padding {
  int32_t top = 0;
  int32_t left = 0;
  int32_t bottom = 0;
  int32_t right = 0;
};

}  // namespace tinyfleet::kernels
