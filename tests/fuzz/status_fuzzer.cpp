// Arbitrary bytes as a device's status message (what fleetd reads from the broker).
#include "round_trip.h"
#include "tinyfleet/update/status_message.h"

using namespace tinyfleet::update;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return round_trip<StatusMessage, kMaxStatusBytes>(data, size, decode_status, encode_status);
}
