#pragma once

// The MQTT client's transport over an Arm CMSDK APB UART (the UARTs of the MPS2 boards;
// UART0 of mps2-an386 is at 0x40004000), polled, no interrupts. The UART carries the
// broker's byte stream as a cellular or Wi-Fi modem in transparent mode would (under
// QEMU, `-serial tcp:HOST:PORT` joins UART0 to the broker's TCP port).
// Registers (Cortex-M System Design Kit TRM, ARM DDI0479): DATA +0x00, STATE +0x04
// (bit 0 TX buffer full, 1 RX buffer full, 2 TX overrun, 3 RX overrun), CTRL +0x08
// (bit 0 TX enable, 1 RX enable), INTSTATUS +0x0C, BAUDDIV +0x10 (>= 16).
#include <cstddef>
#include <cstdint>

#include "tinyfleet/firmware/mqtt_client.h"

namespace tinyfleet::firmware {

class CmsdkUartTransport final : public mqtt::Transport {
 public:
  static constexpr uintptr_t kMps2Uart0 = 0x40004000u;

  // `bauddiv`: the APB clock over the baud rate (25 MHz / 115200 = 217 on MPS2);
  // `now_ms`: the board's millisecond clock.
  CmsdkUartTransport(uintptr_t base, uint32_t bauddiv, uint32_t (*now_ms)());

  // Enables TX and RX. The link itself (the modem's connection to the broker) is the
  // modem's: under QEMU it is open while QEMU's socket is.
  bool open() override;
  void close() override;
  // As many bytes as the one-byte TX buffer takes without waiting.
  int write(const uint8_t* data, size_t size) override;
  // The bytes waiting in the RX buffer; -1 on an RX overrun (a byte was lost, so the
  // MQTT stream is broken and the client reconnects).
  int read(uint8_t* out, size_t capacity) override;
  uint32_t now_ms() override { return now_ms_(); }

 private:
  volatile uint32_t& reg(uint32_t offset) const {
    return *reinterpret_cast<volatile uint32_t*>(base_ + offset);
  }
  uintptr_t base_;
  uint32_t bauddiv_;
  uint32_t (*now_ms_)();
};

}  // namespace tinyfleet::firmware
