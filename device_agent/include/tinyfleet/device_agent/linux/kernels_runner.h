#pragma once

#include <vector>

#include "tinyfleet/device_agent/kernels_runner.h"

namespace tinyfleet::device_agent::linux_port {

// The kernels runner with an arena of its own, sized at each load.
class KernelsRunner final : public device_agent::KernelsRunner {
 public:
  KernelsRunner() : device_agent::KernelsRunner(nullptr, 0) {}

 protected:
  uint8_t* arena_for(size_t bytes) override {
    arena_.assign(bytes, 0);
    return arena_.data();
  }

 private:
  std::vector<uint8_t> arena_;
};

}  // namespace tinyfleet::device_agent::linux_port
