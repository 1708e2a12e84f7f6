#include "tinyfleet/update/topics.h"

#include <cstring>

#include "wire_codec.h"

namespace tinyfleet::update {

namespace {
constexpr TopicKind kKinds[] = {TopicKind::kOffer,  TopicKind::kChunk,     TopicKind::kChunkRequest,
                                TopicKind::kStatus, TopicKind::kTelemetry, TopicKind::kPresence};

// Appends `s` (n bytes) to out[capacity] at *at, keeping room for the NUL.
bool append(char* out, size_t capacity, size_t* at, const char* s, size_t n) {
  if (n >= capacity - *at) return false;
  std::memcpy(out + *at, s, n);
  *at += n;
  out[*at] = '\0';
  return true;
}

WireStatus compose(const char* fleet, const char* device, const char* kind, char* out,
                   size_t capacity) {
  if (capacity == 0) return {WireError::kNoRoom, "topic"};
  out[0] = '\0';
  size_t at = 0;
  const char* parts[] = {kTopicRoot, fleet, "/", device, "/", kind};
  for (const char* p : parts) {
    if (!append(out, capacity, &at, p, std::strlen(p))) return {WireError::kNoRoom, "topic"};
  }
  return {};
}
}  // namespace

const char* to_string(TopicKind kind) {
  static const char* const kNames[] = {"offer",  "chunk",     "chunk/req",
                                       "status", "telemetry", "presence"};
  return wire::name_of(kNames, static_cast<size_t>(kind));
}

bool topic_name_allowed(const char* name, size_t size) {
  if (!name || size == 0 || size > kMaxNameBytes) return false;
  for (size_t i = 0; i < size; ++i) {
    const char c = name[i];
    if (c == '/' || c == '+' || c == '#' || c == '\0') return false;
  }
  return true;
}

WireStatus device_topic_prefix(const char* fleet, const char* device, char* out, size_t capacity) {
  if (!fleet || !topic_name_allowed(fleet, std::strlen(fleet))) {
    return {WireError::kBadName, "topic.fleet"};
  }
  if (!device || !topic_name_allowed(device, std::strlen(device))) {
    return {WireError::kBadName, "topic.device"};
  }
  return compose(fleet, device, "", out, capacity);
}

WireStatus device_topic(const char* fleet, const char* device, TopicKind kind, char* out,
                        size_t capacity) {
  const auto prefix = device_topic_prefix(fleet, device, out, capacity);
  if (!prefix.ok()) return prefix;
  return compose(fleet, device, to_string(kind), out, capacity);
}

WireStatus topic_filter(const char* fleet, TopicKind kind, char* out, size_t capacity) {
  if (fleet && !topic_name_allowed(fleet, std::strlen(fleet))) {
    return {WireError::kBadName, "topic.fleet"};
  }
  return compose(fleet ? fleet : "+", "+", to_string(kind), out, capacity);
}

WireStatus parse_topic(const char* topic, size_t size, TopicName* out) {
  *out = TopicName{};
  const size_t root = sizeof(kTopicRoot) - 1;
  if (!topic || size < root || std::memcmp(topic, kTopicRoot, root) != 0) {
    return {WireError::kBadMagic, "topic.root"};
  }
  const char* end = topic + size;
  const char* fleet = topic + root;
  const auto* slash = static_cast<const char*>(std::memchr(fleet, '/', end - fleet));
  if (!slash) return {WireError::kTruncated, "topic.fleet"};
  const char* device = slash + 1;
  slash = static_cast<const char*>(std::memchr(device, '/', end - device));
  if (!slash) return {WireError::kTruncated, "topic.device"};
  if (!topic_name_allowed(fleet, static_cast<size_t>(device - 1 - fleet))) {
    return {WireError::kBadName, "topic.fleet"};
  }
  if (!topic_name_allowed(device, static_cast<size_t>(slash - device))) {
    return {WireError::kBadName, "topic.device"};
  }
  const char* kind = slash + 1;
  const auto kind_size = static_cast<size_t>(end - kind);
  for (TopicKind k : kKinds) {
    const char* name = to_string(k);
    if (std::strlen(name) == kind_size && std::memcmp(name, kind, kind_size) == 0) {
      *out = {fleet, static_cast<size_t>(device - 1 - fleet), device,
              static_cast<size_t>(slash - device), k};
      return {};
    }
  }
  return {WireError::kBadValue, "topic.kind"};
}

}  // namespace tinyfleet::update
