// Arbitrary bytes as a telemetry window (floats are carried as their bit patterns, so the
// round trip is exact).
#include "round_trip.h"
#include "tinyfleet/update/telemetry_message.h"

using namespace tinyfleet::update;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return round_trip<TelemetryMessage, kTelemetryMaxBytes>(data, size, decode_telemetry,
                                                          encode_telemetry);
}
