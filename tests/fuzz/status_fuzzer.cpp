// Arbitrary bytes as a device's status message (what fleetd reads from the broker): the
// decoder never reads out of bounds, and what it accepts encodes back to the same bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tinyfleet/update/status_message.h"

using namespace tinyfleet::update;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  StatusMessage m;
  if (!decode_status(data, size, &m).ok()) return 0;
  uint8_t out[kMaxStatusBytes];
  size_t n = 0;
  if (!encode_status(m, out, sizeof out, &n).ok() || n != size || std::memcmp(out, data, n) != 0) {
    std::abort();
  }
  return 0;
}
