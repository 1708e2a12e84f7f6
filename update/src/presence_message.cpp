#include "tinyfleet/update/presence_message.h"

#include "wire_codec.h"

namespace tinyfleet::update {

WireStatus encode_presence(const PresenceMessage& m, uint8_t* out, size_t capacity,
                           size_t* written) {
  wire::Writer w(out, capacity);
  wire::begin(w, MessageKind::kPresence, kPresenceVersion, "presence.header");
  w.uint(static_cast<uint8_t>(m.presence), 1, "presence.presence");
  return wire::finish(w, written);
}

WireStatus decode_presence(const uint8_t* data, size_t size, PresenceMessage* out) {
  *out = PresenceMessage{};
  wire::Reader r(data, size);
  if (wire::open(r, size, MessageKind::kPresence, kPresenceVersion, "presence.header") == 0) {
    return r.status();
  }
  const auto presence = static_cast<uint8_t>(r.uint(1, "presence.presence"));
  r.end("presence");
  if (!r.status().ok()) return r.status();
  if (presence > 1) return {WireError::kBadValue, "presence.presence"};
  out->presence = static_cast<Presence>(presence);
  return {};
}

}  // namespace tinyfleet::update
