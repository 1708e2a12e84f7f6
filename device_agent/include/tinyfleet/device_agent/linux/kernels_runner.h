#pragma once

#include <vector>

#include "tinyfleet/device_agent/ports.h"
#include "tinyfleet/kernels/runtime/interpreter.h"

namespace tinyfleet::device_agent::linux_port {

// Runs artifacts on the kernels' runtime with an arena of its own (sized at load).
class KernelsRunner final : public ModelRunner {
 public:
  bool load(const uint8_t* artifact, size_t size, const char** reason) override;
  size_t input_bytes() const override { return in_bytes_; }
  size_t output_bytes() const override { return out_bytes_; }
  bool run(const int8_t* input, int8_t* output) override;
  float input_scale() const override { return in_scale_; }
  int32_t input_zero_point() const override { return in_zero_; }

 private:
  kernels::Interpreter interp_;
  std::vector<uint8_t> arena_;
  size_t in_bytes_ = 0, out_bytes_ = 0;
  float in_scale_ = 1.0f;
  int32_t in_zero_ = 0;
};

}  // namespace tinyfleet::device_agent::linux_port
