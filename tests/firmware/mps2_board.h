// The mps2-an386 board under QEMU as the Cortex-M4 MQTT apps use it (reference_firmware,
// mqtt_uart_app): time from timer 0 (25 MHz in QEMU's virtual time, extended past its
// wrap) and UART0 (CMSDK, 115200 baud), which QEMU joins to the broker (`-serial tcp:...`).
// InstructionCounter::start() must run first.
#pragma once

#include <cstdint>

#include "instruction_counter.h"
#include "tinyfleet/firmware/cmsdk_uart.h"

namespace tinyfleet::firmware_test {

// Timer 0 ticks since start, extended past its 32-bit wrap (read it once a wrap at least).
inline uint64_t board_ticks() {
  static uint32_t last = 0;
  static uint64_t ticks = 0;
  const uint32_t now = firmware::InstructionCounter::ticks();
  ticks += now - last;
  last = now;
  return ticks;
}
inline uint32_t board_ms() { return static_cast<uint32_t>(board_ticks() / 25000u); }

// UART0 at 115200 baud (25 MHz / 217), its timeouts on board_ms().
inline firmware::CmsdkUartTransport board_uart0() {
  return firmware::CmsdkUartTransport(firmware::CmsdkUartTransport::kMps2Uart0, 217, board_ms);
}

}  // namespace tinyfleet::firmware_test
