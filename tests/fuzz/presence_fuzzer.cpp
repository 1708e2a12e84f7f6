// Arbitrary bytes as a presence message: bounded decoding and an exact round trip.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tinyfleet/update/presence_message.h"

using namespace tinyfleet::update;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  PresenceMessage m;
  if (!decode_presence(data, size, &m).ok()) return 0;
  uint8_t out[kPresenceBytes];
  size_t n = 0;
  if (!encode_presence(m, out, sizeof out, &n).ok() || n != size ||
      std::memcmp(out, data, n) != 0) {
    std::abort();
  }
  return 0;
}
