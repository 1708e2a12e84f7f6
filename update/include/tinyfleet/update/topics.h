#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/update/wire_format.h"

namespace tinyfleet::update {

// Every topic of the protocol is tinyfleet/v1/{fleet}/{device}/{kind}; the broker's ACL
// lets a device use only the topics with its own id (docs/update-protocol.md).
enum class TopicKind : uint8_t {
  kOffer,         // server -> device, retained: the signed offer
  kChunk,         // server -> device: a chunk answer (TFCK)
  kChunkRequest,  // device -> server: a chunk request (TFCR), "chunk/req"
  kStatus,        // device -> server, retained: status message
  kTelemetry,     // device -> server: telemetry window
  kPresence,      // device (and its will) -> anyone, retained: presence message
};
// The topic's last level(s): "offer", "chunk", "chunk/req", "status", ...
const char* to_string(TopicKind kind);

inline constexpr char kTopicRoot[] = "tinyfleet/v1/";
// Root, two names of at most kMaxNameBytes, three slashes, the longest kind, and a NUL.
inline constexpr size_t kMaxTopicBytes = sizeof(kTopicRoot) - 1 + 2 * kMaxNameBytes + 2 + 9 + 1;

// A fleet or device name may appear in a topic: 1..kMaxNameBytes bytes, none of them
// '/', '+', '#' or NUL.
bool topic_name_allowed(const char* name, size_t size);

// "tinyfleet/v1/{fleet}/{device}/" into out[capacity], NUL-terminated.
WireStatus device_topic_prefix(const char* fleet, const char* device, char* out, size_t capacity);
// "tinyfleet/v1/{fleet}/{device}/{kind}".
WireStatus device_topic(const char* fleet, const char* device, TopicKind kind, char* out,
                        size_t capacity);
// A subscription filter for `kind` of every device: "tinyfleet/v1/{fleet}/+/{kind}", with
// fleet "+" (every fleet) when `fleet` is null.
WireStatus topic_filter(const char* fleet, TopicKind kind, char* out, size_t capacity);

// A device topic split into its names (pointing into `topic`) and kind.
struct TopicName {
  const char* fleet = nullptr;
  size_t fleet_size = 0;
  const char* device = nullptr;
  size_t device_size = 0;
  TopicKind kind = TopicKind::kStatus;
};
WireStatus parse_topic(const char* topic, size_t size, TopicName* out);

}  // namespace tinyfleet::update
