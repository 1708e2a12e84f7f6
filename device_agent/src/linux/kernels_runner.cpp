#include "tinyfleet/device_agent/linux/kernels_runner.h"

#include <cstring>

namespace tinyfleet::device_agent::linux_port {

bool KernelsRunner::load(const uint8_t* artifact, size_t size, const char** reason) {
  const auto err = interp_.load(artifact, size);
  if (err.status != kernels::LoadStatus::kOk) {
    *reason = err.what;
    return false;
  }
  arena_.assign(interp_.arena_bytes(), 0);
  if (interp_.bind_arena(arena_.data(), arena_.size()).status != kernels::LoadStatus::kOk) {
    *reason = "arena";
    return false;
  }
  in_bytes_ = interp_.input(0).bytes;
  out_bytes_ = interp_.output(0).bytes;
  in_scale_ = interp_.input(0).scale;
  in_zero_ = interp_.input(0).zero_point;
  return true;
}

bool KernelsRunner::run(const int8_t* input, int8_t* output) {
  std::memcpy(interp_.input(0).data, input, in_bytes_);
  if (interp_.invoke().status != kernels::LoadStatus::kOk) return false;
  std::memcpy(output, interp_.output(0).data, out_bytes_);
  return true;
}

}  // namespace tinyfleet::device_agent::linux_port
