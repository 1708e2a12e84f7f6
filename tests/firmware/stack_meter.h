// Stack high-water mark for the QEMU check apps: paint the region below main's frame,
// run, then find the lowest word that changed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tinyfleet::firmware_test {

class StackMeter {
 public:
  static constexpr size_t kPaint = 48 * 1024;
  static constexpr uint32_t kPattern = 0xa5a5a5a5u;
  // `top`: an address a little below the caller's frame.
  __attribute__((noinline)) explicit StackMeter(uintptr_t top) : top_(top & ~uintptr_t{3}) {
    auto* bottom = reinterpret_cast<volatile uint32_t*>(top_ - kPaint);
    for (size_t i = 0; i < kPaint / 4; ++i) bottom[i] = kPattern;
  }
  __attribute__((noinline)) size_t used() const {
    const auto* bottom = reinterpret_cast<const volatile uint32_t*>(top_ - kPaint);
    size_t i = 0;
    while (i < kPaint / 4 && bottom[i] == kPattern) ++i;
    return kPaint - i * 4;
  }

 private:
  uintptr_t top_;
};

}  // namespace tinyfleet::firmware_test
