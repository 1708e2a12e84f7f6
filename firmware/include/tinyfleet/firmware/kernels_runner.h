#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/device_agent/ports.h"
#include "tinyfleet/kernels/runtime/interpreter.h"

namespace tinyfleet::firmware {

// The agent's ModelRunner port on the MCU: the kernels runtime over an arena the
// firmware gives it (static, sized for the largest model the class takes). The artifact
// is read in place (a mapped flash slot); nothing is copied or allocated.
class KernelsRunner final : public device_agent::ModelRunner {
 public:
  KernelsRunner(uint8_t* arena, size_t arena_bytes) : arena_(arena), arena_bytes_(arena_bytes) {}
  bool load(const uint8_t* artifact, size_t size, const char** reason) override;
  size_t input_bytes() const override { return in_bytes_; }
  size_t output_bytes() const override { return out_bytes_; }
  bool run(const int8_t* input, int8_t* output) override;
  float input_scale() const override { return in_scale_; }
  int32_t input_zero_point() const override { return in_zero_; }

 private:
  kernels::Interpreter interp_;
  uint8_t* arena_;
  size_t arena_bytes_;
  bool loaded_ = false;
  size_t in_bytes_ = 0, out_bytes_ = 0;
  float in_scale_ = 1.0f;
  int32_t in_zero_ = 0;
};

}  // namespace tinyfleet::firmware
