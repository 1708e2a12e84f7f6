#pragma once

// Instruction counts on QEMU mps2-an386 run with `-icount shift=0`: QEMU then advances
// its virtual clock by exactly 1 ns per executed instruction, and the board's CMSDK
// timer 0 (APB, 0x40000000) counts down at the 25 MHz system clock of that virtual
// time, so one timer tick is 40 instructions. Resolution: 40 instructions; the two
// reads cost a few more. Wraps after 2^32 ticks (171 G instructions). Without
// `-icount shift=0` the figures are host time, not instructions (docs/kernels.md).
#include <cstdint>

namespace tinyfleet::firmware {

class InstructionCounter {
 public:
  static constexpr uint32_t kInstructionsPerTick = 40;  // 1 ns per instruction, 25 MHz

  // Starts timer 0 free-running from 0xffffffff (no interrupt).
  static void start() {
    reg(kCtrl) = 0;
    reg(kReload) = 0xffffffffu;
    reg(kValue) = 0xffffffffu;
    reg(kCtrl) = 1;
  }
  static uint32_t ticks() { return ~reg(kValue); }  // counts up from 0
  // Instructions between two ticks() readings.
  static uint64_t instructions(uint32_t from, uint32_t to) {
    return static_cast<uint64_t>(to - from) * kInstructionsPerTick;
  }

 private:
  static constexpr uint32_t kBase = 0x40000000u, kCtrl = 0, kValue = 1, kReload = 2;
  static volatile uint32_t& reg(uint32_t i) {
    return reinterpret_cast<volatile uint32_t*>(kBase)[i];
  }
};

// Instructions executed by f() (a lambda or function object).
template <typename F>
uint64_t count_instructions(F&& f) {
  const uint32_t a = InstructionCounter::ticks();
  f();
  return InstructionCounter::instructions(a, InstructionCounter::ticks());
}

}  // namespace tinyfleet::firmware
