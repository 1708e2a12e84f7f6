// Arbitrary bytes as a telemetry window: bounded decoding, and an exact round trip of
// what is accepted (floats are carried as their bit patterns).
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tinyfleet/update/telemetry_message.h"

using namespace tinyfleet::update;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  TelemetryMessage m;
  if (!decode_telemetry(data, size, &m).ok()) return 0;
  uint8_t out[kTelemetryBytes];
  size_t n = 0;
  if (!encode_telemetry(m, out, sizeof out, &n).ok() || n != size ||
      std::memcmp(out, data, n) != 0) {
    std::abort();
  }
  return 0;
}
