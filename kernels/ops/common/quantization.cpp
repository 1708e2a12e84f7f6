#include "tinyfleet/kernels/ops/quantization.h"

#include <cmath>

namespace tinyfleet::kernels {

const char* to_string(Status status) {
  switch (status) {
    case Status::kOk:
      return "ok";
    case Status::kBadShape:
      return "inconsistent shapes";
    case Status::kBadParams:
      return "unsupported parameters";
    case Status::kScratchTooSmall:
      return "scratch buffer too small";
  }
  return "unknown";
}

int8_t quantize_value(float real, const TensorQuant& q) {
  const float scaled = std::round(real / q.scale) + static_cast<float>(q.zero_point);
  if (scaled <= -128.0f) return -128;
  if (scaled >= 127.0f) return 127;
  return static_cast<int8_t>(scaled);
}

}  // namespace tinyfleet::kernels
