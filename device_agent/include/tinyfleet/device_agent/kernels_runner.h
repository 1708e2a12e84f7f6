#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/device_agent/ports.h"
#include "tinyfleet/kernels/runtime/interpreter.h"

namespace tinyfleet::device_agent {

// The ModelRunner port over the kernels runtime, one for every port: the artifact is read
// in place (a mapped flash slot on an MCU); the arena is the one the firmware gives it
// (static, sized for the largest model its class takes). No heap: the firmware links it.
// A port whose memory grows (Linux) overrides arena_for() to size the arena at load.
class KernelsRunner : public ModelRunner {
 public:
  KernelsRunner(uint8_t* arena, size_t arena_bytes) : arena_(arena), arena_bytes_(arena_bytes) {}
  bool load(const uint8_t* artifact, size_t size, const char** reason) final;
  size_t input_bytes() const final { return in_bytes_; }
  size_t output_bytes() const final { return out_bytes_; }
  bool run(const int8_t* input, int8_t* output) final;
  float input_scale() const final { return in_scale_; }
  int32_t input_zero_point() const final { return in_zero_; }

 protected:
  // The arena for a model that needs `bytes`, or nullptr when this device has none that
  // large. Default: the fixed arena given at construction.
  virtual uint8_t* arena_for(size_t bytes) { return bytes <= arena_bytes_ ? arena_ : nullptr; }

 private:
  kernels::Interpreter interp_;
  uint8_t* arena_;
  size_t arena_bytes_;
  bool loaded_ = false;
  size_t in_bytes_ = 0, out_bytes_ = 0;
  float in_scale_ = 1.0f;
  int32_t in_zero_ = 0;
};

}  // namespace tinyfleet::device_agent
