// MQTT topics and filters as nats-server's MQTT listener maps them to NATS subjects, and
// back (fleetd's NATS queue subscriptions, broker.kind nats).
#include "tinyfleet/server/nats_subject.h"

#include <gtest/gtest.h>

#include <string>

namespace tinyfleet::server {
namespace {

std::string topic_of(const std::string& subject, size_t max = 64) {
  std::string topic;
  const auto e = subject_to_mqtt_topic(subject.data(), subject.size(), max, &topic);
  return e.ok() ? topic : "error: " + e.what;
}

TEST(NatsSubject, FiltersMapWildcardsAndSeparators) {
  EXPECT_EQ(mqtt_filter_to_subject("tinyfleet/v1/+/+/telemetry"), "tinyfleet.v1.*.*.telemetry");
  EXPECT_EQ(mqtt_filter_to_subject("tinyfleet/v1/+/+/chunk/req"), "tinyfleet.v1.*.*.chunk.req");
  EXPECT_EQ(mqtt_filter_to_subject("tinyfleet/#"), "tinyfleet.>");
  // A dot inside a level is `//`; a `+` inside a level is no wildcard.
  EXPECT_EQ(mqtt_filter_to_subject("a.b/c+"), "a//b.c+");
}

TEST(NatsSubject, SubjectsMapBackToTopics) {
  EXPECT_EQ(topic_of("tinyfleet.v1.default.dev1.chunk.req"), "tinyfleet/v1/default/dev1/chunk/req");
  EXPECT_EQ(topic_of("tinyfleet.v1.default.dev//1.status"), "tinyfleet/v1/default/dev.1/status");
}

TEST(NatsSubject, WhatNoMqttTopicMapsToIsRefusedWithItsReason) {
  EXPECT_EQ(topic_of(""), "error: empty subject");
  EXPECT_EQ(topic_of("a..b"), "error: empty level in subject");
  EXPECT_EQ(topic_of(".a"), "error: empty level in subject");
  EXPECT_EQ(topic_of("a."), "error: empty level in subject");
  EXPECT_EQ(topic_of("a.*.b"), "error: wildcard in subject");
  EXPECT_EQ(topic_of("a.>"), "error: wildcard in subject");
  EXPECT_EQ(topic_of("a.+"), "error: wildcard in subject");
  EXPECT_EQ(topic_of("a/b"), "error: lone '/' in subject");
  EXPECT_EQ(topic_of(std::string("a\0b", 3)), "error: control character in subject");
  EXPECT_EQ(topic_of(std::string(65, 'a')), "error: subject longer than 64 bytes");
  EXPECT_EQ(topic_of(std::string(64, 'a')), std::string(64, 'a'));
}

}  // namespace
}  // namespace tinyfleet::server
