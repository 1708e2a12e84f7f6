#include "tinyfleet/device_agent/kernels_runner.h"

#include <cstring>

namespace tinyfleet::device_agent {

bool KernelsRunner::load(const uint8_t* artifact, size_t size, const char** reason) {
  loaded_ = false;
  const auto err = interp_.load(artifact, size);
  if (err.status != kernels::LoadStatus::kOk) {
    *reason = err.what;
    return false;
  }
  const size_t need = interp_.arena_bytes();
  uint8_t* arena = arena_for(need);
  if (arena == nullptr || interp_.bind_arena(arena, need).status != kernels::LoadStatus::kOk) {
    *reason = "model needs a larger arena than this device has";
    return false;
  }
  in_bytes_ = interp_.input(0).bytes;
  out_bytes_ = interp_.output(0).bytes;
  in_scale_ = interp_.input(0).scale;
  in_zero_ = interp_.input(0).zero_point;
  loaded_ = true;
  return true;
}

bool KernelsRunner::run(const int8_t* input, int8_t* output) {
  if (!loaded_) return false;
  std::memcpy(interp_.input(0).data, input, in_bytes_);
  if (interp_.invoke().status != kernels::LoadStatus::kOk) return false;
  std::memcpy(output, interp_.output(0).data, out_bytes_);
  return true;
}

}  // namespace tinyfleet::device_agent
