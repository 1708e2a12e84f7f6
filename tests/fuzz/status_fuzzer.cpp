// Arbitrary bytes as a device's status message (what fleetd reads from the broker), and
// the detail of any it accepts named as fleetd stores it (update/agent_reasons.h).
#include <cstdlib>
#include <cstring>

#include "round_trip.h"
#include "tinyfleet/update/agent_reasons.h"
#include "tinyfleet/update/status_message.h"

using namespace tinyfleet::update;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  round_trip<StatusMessage, kMaxStatusBytes>(data, size, decode_status, encode_status);
  StatusMessage m;
  if (!decode_status(data, size, &m).ok()) return 0;
  const char* named = name_detail(m.detail, m.event, m.refusal);
  // A name from a table, or the detail itself: never null, never past the longest name.
  if (named == nullptr || std::strlen(named) > 2 * kMaxDetailBytes) std::abort();
  return 0;
}
