#pragma once

// What every message fuzzer checks: the decoder reads arbitrary bytes without going out
// of bounds (ASan), and what it accepts encodes back to exactly the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tinyfleet/update/wire_format.h"

template <class Message, size_t kMaxBytes, class Decode, class Encode>
int round_trip(const uint8_t* data, size_t size, Decode decode, Encode encode) {
  Message m;
  if (!decode(data, size, &m).ok()) return 0;
  uint8_t out[kMaxBytes];
  size_t n = 0;
  if (!encode(m, out, sizeof out, &n).ok() || n != size || std::memcmp(out, data, n) != 0) {
    std::abort();
  }
  return 0;
}
