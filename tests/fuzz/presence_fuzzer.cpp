// Arbitrary bytes as a presence message.
#include "round_trip.h"
#include "tinyfleet/update/presence_message.h"

using namespace tinyfleet::update;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return round_trip<PresenceMessage, kPresenceBytes>(data, size, decode_presence, encode_presence);
}
