// Arbitrary bytes as the NATS subject a device's MQTT publish arrived on (fleetd,
// broker.kind nats): mapped back to an MQTT topic within its bound, or refused; a topic
// it returns maps to the same subject again.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tinyfleet/server/nats_subject.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kMax = 160;
  std::string topic;
  const auto e = tinyfleet::server::subject_to_mqtt_topic(reinterpret_cast<const char*>(data), size,
                                                          kMax, &topic);
  if (e.ok()) {
    if (topic.size() > kMax) std::abort();
    const std::string back = tinyfleet::server::mqtt_filter_to_subject(topic);
    if (back != std::string(reinterpret_cast<const char*>(data), size)) std::abort();
  }
  return 0;
}
