// Topic names: one builder and one parser for tinyfleet/v1/{fleet}/{device}/{kind}.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "tinyfleet/update/topics.h"

using namespace tinyfleet::update;

namespace {
std::string topic(const char* fleet, const char* device, TopicKind kind) {
  char out[kMaxTopicBytes];
  EXPECT_TRUE(device_topic(fleet, device, kind, out, sizeof out).ok());
  return out;
}
constexpr TopicKind kAll[] = {TopicKind::kOffer,  TopicKind::kChunk,     TopicKind::kChunkRequest,
                              TopicKind::kStatus, TopicKind::kTelemetry, TopicKind::kPresence};
}  // namespace

TEST(Topics, BuildsEveryKind) {
  EXPECT_EQ(topic("default", "dev-1", TopicKind::kOffer), "tinyfleet/v1/default/dev-1/offer");
  EXPECT_EQ(topic("f", "d", TopicKind::kChunk), "tinyfleet/v1/f/d/chunk");
  EXPECT_EQ(topic("f", "d", TopicKind::kChunkRequest), "tinyfleet/v1/f/d/chunk/req");
  EXPECT_EQ(topic("f", "d", TopicKind::kStatus), "tinyfleet/v1/f/d/status");
  EXPECT_EQ(topic("f", "d", TopicKind::kTelemetry), "tinyfleet/v1/f/d/telemetry");
  EXPECT_EQ(topic("f", "d", TopicKind::kPresence), "tinyfleet/v1/f/d/presence");
  char prefix[kMaxTopicBytes];
  ASSERT_TRUE(device_topic_prefix("f", "d", prefix, sizeof prefix).ok());
  EXPECT_STREQ(prefix, "tinyfleet/v1/f/d/");
}

TEST(Topics, ParsesWhatItBuilds) {
  for (TopicKind kind : kAll) {
    const std::string t = topic("fleet.a", "device_7", kind);
    TopicName name;
    ASSERT_TRUE(parse_topic(t.data(), t.size(), &name).ok()) << t;
    EXPECT_EQ(std::string(name.fleet, name.fleet_size), "fleet.a");
    EXPECT_EQ(std::string(name.device, name.device_size), "device_7");
    EXPECT_EQ(name.kind, kind);
  }
}

TEST(Topics, Filters) {
  char out[kMaxTopicBytes];
  ASSERT_TRUE(topic_filter(nullptr, TopicKind::kStatus, out, sizeof out).ok());
  EXPECT_STREQ(out, "tinyfleet/v1/+/+/status");
  ASSERT_TRUE(topic_filter("acl", TopicKind::kTelemetry, out, sizeof out).ok());
  EXPECT_STREQ(out, "tinyfleet/v1/acl/+/telemetry");
  EXPECT_EQ(topic_filter("a/b", TopicKind::kStatus, out, sizeof out).error, WireError::kBadName);
}

TEST(Topics, RefusesNamesATopicCannotCarry) {
  char out[kMaxTopicBytes];
  const std::string long_name(kMaxNameBytes + 1, 'x');
  const std::string longest(kMaxNameBytes, 'x');
  for (const char* bad : {"", "a/b", "a+b", "a#", long_name.c_str()}) {
    EXPECT_EQ(device_topic("f", bad, TopicKind::kStatus, out, sizeof out).error,
              WireError::kBadName)
        << bad;
    EXPECT_EQ(device_topic(bad, "d", TopicKind::kStatus, out, sizeof out).field,
              std::string("topic.fleet"));
  }
  // The longest names and kind fit kMaxTopicBytes exactly.
  ASSERT_TRUE(
      device_topic(longest.c_str(), longest.c_str(), TopicKind::kTelemetry, out, sizeof out).ok());
  EXPECT_EQ(std::strlen(out) + 1, kMaxTopicBytes);
}

TEST(Topics, BuildingIntoASmallBufferFailsWithoutOverrun) {
  const std::string full = topic("f", "d", TopicKind::kChunkRequest);
  for (size_t cap = 0; cap <= full.size(); ++cap) {
    char out[64];
    std::memset(out, 'Z', sizeof out);
    EXPECT_EQ(device_topic("f", "d", TopicKind::kChunkRequest, out, cap).error, WireError::kNoRoom);
    for (size_t i = cap; i < sizeof out; ++i) ASSERT_EQ(out[i], 'Z') << cap;
  }
}

TEST(Topics, ParseRefusesOtherTopics) {
  const struct {
    const char* topic;
    WireError error;
  } cases[] = {
      {"tinyfleet/v2/f/d/status", WireError::kBadMagic},
      {"tinyfleet/v1/f", WireError::kTruncated},
      {"tinyfleet/v1/f/d", WireError::kTruncated},
      {"tinyfleet/v1//d/status", WireError::kBadName},
      {"tinyfleet/v1/f//status", WireError::kBadName},
      {"tinyfleet/v1/f/d/", WireError::kBadValue},
      {"tinyfleet/v1/f/d/statuses", WireError::kBadValue},
      {"tinyfleet/v1/f/d/chunk/req/x", WireError::kBadValue},
      {"tinyfleet/v1/+/d/status", WireError::kBadName},
      {"", WireError::kBadMagic},
  };
  for (const auto& c : cases) {
    TopicName name;
    EXPECT_EQ(parse_topic(c.topic, std::strlen(c.topic), &name).error, c.error) << c.topic;
  }
  // Every truncation of a valid topic is refused or is a shorter valid topic.
  const std::string t = topic("f", "d", TopicKind::kChunkRequest);
  for (size_t n = 0; n < t.size(); ++n) {
    TopicName name;
    const auto s = parse_topic(t.data(), n, &name);
    if (s.ok()) {
      EXPECT_EQ(t.substr(0, n), "tinyfleet/v1/f/d/chunk");
    }
  }
}
