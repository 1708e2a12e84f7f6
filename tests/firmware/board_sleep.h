// Idle by WFI on the mps2-an386 board, so the reference firmware can run under QEMU's
// `-icount shift=0,sleep=on` (docs/firmware.md, "Measured cycles"): the guest sleeps until
// UART0 receives a byte or SysTick's 1 ms tick, and while every CPU sleeps QEMU lets its
// virtual clock follow real time (sleep=on). So timeouts and keep-alives stay in step with
// the broker's clock, while code that runs is counted at one instruction a nanosecond.
// Vectors: the image's table (kernels/firmware/startup.c) has the 16 system entries only;
// board_sleep_init() copies it into a RAM table with SysTick and UART0's RX interrupt
// (IRQ 0) and points VTOR there. The handlers only clear what woke the core; the main loop
// then polls as before.
#pragma once

#include <cstdint>

namespace tinyfleet::firmware_test {

namespace board_sleep_detail {
using Vector = void (*)();
constexpr uintptr_t kUart0 = 0x40004000u, kUartCtrl = 0x08, kUartIntClear = 0x0C;
constexpr uint32_t kUartRxInterrupt = 1u << 3;  // CTRL: RX interrupt enable
constexpr uint32_t kUartRxStatus = 1u << 1;     // INTSTATUS/INTCLEAR: RX
constexpr uintptr_t kSysTickCtrl = 0xE000E010u, kSysTickLoad = 0xE000E014u,
                    kSysTickValue = 0xE000E018u, kVtor = 0xE000ED08u, kNvicIser0 = 0xE000E100u;
inline volatile uint32_t& reg(uintptr_t addr) {
  return *reinterpret_cast<volatile uint32_t*>(addr);
}
inline void systick() {}
inline void uart0_rx() { reg(kUart0 + kUartIntClear) = kUartRxStatus; }
// 16 system exceptions and IRQ 0-15; VTOR needs the table aligned to its size rounded up.
alignas(128) inline Vector g_vectors[32];
}  // namespace board_sleep_detail

// SysTick every 1 ms of the 25 MHz core clock, UART0's RX interrupt enabled in the NVIC.
inline void board_sleep_init() {
  using namespace board_sleep_detail;
  // The image's table (VTOR reads its address: 0 at reset), read as words.
  const uintptr_t table = reg(kVtor);
  for (int i = 0; i < 16; ++i) {
    g_vectors[i] = reinterpret_cast<Vector>(reg(table + 4u * static_cast<uintptr_t>(i)));
  }
  g_vectors[15] = systick;
  g_vectors[16 + 0] = uart0_rx;
  reg(kVtor) = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(g_vectors));
  asm volatile("dsb\n isb" ::: "memory");
  reg(kSysTickLoad) = 25000 - 1;
  reg(kSysTickValue) = 0;
  reg(kSysTickCtrl) = 7;  // enable, interrupt, core clock
  reg(kNvicIser0) = 1u << 0;
}

// Sleeps until the next interrupt (a received byte or the next tick). The UART transport
// rewrites CTRL when it (re)opens the link, so the RX interrupt is enabled again here.
inline void board_sleep() {
  using namespace board_sleep_detail;
  volatile uint32_t& ctrl = reg(kUart0 + kUartCtrl);
  if ((ctrl & kUartRxInterrupt) == 0) ctrl = ctrl | kUartRxInterrupt;
  asm volatile("wfi" ::: "memory");
}

// Runs f with interrupts masked: what it takes on timer 0 is its own instructions only.
template <typename F>
auto without_interrupts(F&& f) {
  asm volatile("cpsid i" ::: "memory");
  auto result = f();
  asm volatile("cpsie i" ::: "memory");
  return result;
}

}  // namespace tinyfleet::firmware_test
