// Polled CMSDK APB UART transport (see cmsdk_uart.h).
#include "tinyfleet/firmware/cmsdk_uart.h"

namespace tinyfleet::firmware {
namespace {

constexpr uint32_t kData = 0x00, kState = 0x04, kCtrl = 0x08, kBaudDiv = 0x10;
constexpr uint32_t kTxFull = 1u << 0, kRxFull = 1u << 1, kTxOverrun = 1u << 2, kRxOverrun = 1u << 3;
constexpr uint32_t kTxEnable = 1u << 0, kRxEnable = 1u << 1;

}  // namespace

CmsdkUartTransport::CmsdkUartTransport(uintptr_t base, uint32_t bauddiv, uint32_t (*now_ms)())
    : base_(base), bauddiv_(bauddiv < 16 ? 16 : bauddiv), now_ms_(now_ms) {}

bool CmsdkUartTransport::open() {
  reg(kCtrl) = 0;
  reg(kBaudDiv) = bauddiv_;
  reg(kState) = kTxOverrun | kRxOverrun;  // write-one-to-clear
  reg(kCtrl) = kTxEnable | kRxEnable;
  return true;
}

void CmsdkUartTransport::close() {
  // Nothing to hang up on a transparent link; a modem driver would drop its data call here.
}

int CmsdkUartTransport::write(const uint8_t* data, size_t size) {
  size_t i = 0;
  while (i < size && (reg(kState) & kTxFull) == 0) reg(kData) = data[i++];
  return static_cast<int>(i);
}

int CmsdkUartTransport::read(uint8_t* out, size_t capacity) {
  size_t i = 0;
  uint32_t state = reg(kState);
  if (state & kRxOverrun) {
    reg(kState) = kRxOverrun;
    return -1;
  }
  while (i < capacity && (state & kRxFull) != 0) {
    out[i++] = static_cast<uint8_t>(reg(kData));
    state = reg(kState);
  }
  return static_cast<int>(i);
}

}  // namespace tinyfleet::firmware
