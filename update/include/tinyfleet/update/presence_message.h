#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/update/wire_format.h"

namespace tinyfleet::update {

// Whether a device's MQTT session is up: retained on tinyfleet/v1/{fleet}/{device}/presence.
// The device publishes kOnline after it connects and kOffline before a clean disconnect,
// and registers kOffline as its will, which the broker publishes when the connection
// ends any other way.
enum class Presence : uint8_t { kOffline = 0, kOnline = 1 };

struct PresenceMessage {
  Presence presence = Presence::kOnline;
};
inline constexpr uint8_t kPresenceVersion = 1;
inline constexpr size_t kPresenceBytes = kHeaderBytes + 1;

WireStatus encode_presence(const PresenceMessage& m, uint8_t* out, size_t capacity,
                           size_t* written);
WireStatus decode_presence(const uint8_t* data, size_t size, PresenceMessage* out);

}  // namespace tinyfleet::update
