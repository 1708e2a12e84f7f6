#pragma once

// MQTT topics as nats-server's MQTT listener maps them to NATS subjects (nats-server
// 2.9, server/mqtt.go): level separator `/` is `.`, a `.` inside a level is `//`, the
// wildcards `+` and `#` are `*` and `>`. fleetd subscribes through NATS to what devices
// publish over MQTT, and hands the handlers the MQTT topic back.
#include <cstddef>
#include <string>

namespace tinyfleet::server {

// What is wrong with a subject that cannot be turned back into a topic (empty: nothing).
struct SubjectError {
  std::string what;
  bool ok() const { return what.empty(); }
};

// An MQTT filter (`tinyfleet/v1/+/+/telemetry`) as a NATS subject filter
// (`tinyfleet.v1.*.*.telemetry`).
std::string mqtt_filter_to_subject(const std::string& filter);

// A NATS subject a device's MQTT publish arrived on, as its MQTT topic, at most
// `max_bytes` long. Refuses: empty subjects, subjects longer than max_bytes, wildcards
// (NATS's or MQTT's),
// empty levels (`a..b`, leading or trailing `.`) and control characters.
SubjectError subject_to_mqtt_topic(const char* subject, size_t size, size_t max_bytes,
                                   std::string* topic);

}  // namespace tinyfleet::server
