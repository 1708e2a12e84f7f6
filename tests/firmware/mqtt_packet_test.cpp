// The firmware's MQTT 3.1.1 packet codec against the specification's byte layouts, and
// its parser's bounds: each malformed packet is refused with the error naming it.
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tinyfleet/firmware/mqtt_packet.h"

using namespace tinyfleet::firmware::mqtt;

namespace {

using Bytes = std::vector<uint8_t>;

MqttError parse(const Bytes& b, Packet* p) { return parse_packet(b.data(), b.size(), p); }

TEST(MqttPacket, ConnectHasTheLayoutOfSection3_1) {
  ConnectOptions o;
  o.client_id = "dev";
  o.username = "u";
  o.password = "pw";
  o.keep_alive_s = 30;
  o.will_topic = "w/t";
  const uint8_t will[] = {0xaa};
  o.will_payload = will;
  o.will_payload_size = 1;
  o.will_qos = 1;
  o.will_retain = true;
  uint8_t out[64];
  size_t n = 0;
  ASSERT_EQ(encode_connect(o, out, sizeof out, &n), MqttError::kOk);
  const Bytes expected = {0x10, 30, 0, 4,   'M', 'Q', 'T', 'T', 4,    0xee, 0, 30,  0, 3, 'd', 'e',
                          'v',  0,  3, 'w', '/', 't', 0,   1,   0xaa, 0,    1, 'u', 0, 2, 'p', 'w'};
  // Flags: user name 0x80, password 0x40, will retain 0x20, will QoS 1 0x08, will 0x04,
  // clean session 0x02 = 0xee. Remaining: 10 + (2 + 3) + (2 + 3 + 2 + 1) + (2 + 1) + (2 + 2).
  ASSERT_EQ(n, expected.size());
  EXPECT_EQ(Bytes(out, out + n), expected);
}

TEST(MqttPacket, EncodersRefuseWhatDoesNotFitOrIsInvalid) {
  uint8_t out[16];
  size_t n = 99;
  const uint8_t payload[20] = {};
  EXPECT_EQ(encode_publish("t", payload, sizeof payload, 0, false, false, 0, out, sizeof out, &n),
            MqttError::kBufferTooSmall);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(encode_publish("t", payload, 1, 1, false, false, 0, out, sizeof out, &n),
            MqttError::kZeroPacketId);
  EXPECT_EQ(encode_publish("", payload, 1, 0, false, false, 0, out, sizeof out, &n),
            MqttError::kBadTopic);
  EXPECT_EQ(encode_subscribe(1, "t", 2, out, sizeof out, &n), MqttError::kBadQos);
  const std::string long_topic(70000, 'a');
  EXPECT_EQ(encode_subscribe(1, long_topic.c_str(), 0, out, sizeof out, &n),
            MqttError::kFieldTooLong);
  EXPECT_EQ(encode_pingreq(out, 1, &n), MqttError::kBufferTooSmall);
  ASSERT_EQ(encode_pingreq(out, 2, &n), MqttError::kOk);
  EXPECT_EQ(Bytes(out, out + n), (Bytes{0xc0, 0}));
  ASSERT_EQ(encode_disconnect(out, 2, &n), MqttError::kOk);
  EXPECT_EQ(Bytes(out, out + n), (Bytes{0xe0, 0}));
  ASSERT_EQ(encode_puback(0x1234, out, sizeof out, &n), MqttError::kOk);
  EXPECT_EQ(Bytes(out, out + n), (Bytes{0x40, 2, 0x12, 0x34}));
  ASSERT_EQ(encode_subscribe(7, "a/b", 1, out, sizeof out, &n), MqttError::kOk);
  EXPECT_EQ(Bytes(out, out + n), (Bytes{0x82, 8, 0, 7, 0, 3, 'a', '/', 'b', 1}));
}

TEST(MqttPacket, RemainingLengthBoundariesOfSection2_2_3) {
  const struct {
    uint32_t value;
    Bytes field;
  } cases[] = {{0, {0x00}},
               {127, {0x7f}},
               {128, {0x80, 0x01}},
               {16383, {0xff, 0x7f}},
               {16384, {0x80, 0x80, 0x01}},
               {2097151, {0xff, 0xff, 0x7f}},
               {2097152, {0x80, 0x80, 0x80, 0x01}},
               {kMaxRemainingLength, {0xff, 0xff, 0xff, 0x7f}}};
  for (const auto& c : cases) {
    Bytes header = {0x30};
    header.insert(header.end(), c.field.begin(), c.field.end());
    size_t n = 0;
    EXPECT_EQ(frame_length(header.data(), header.size(), SIZE_MAX, &n), MqttError::kOk) << c.value;
    EXPECT_EQ(n, header.size() + c.value) << c.value;
    EXPECT_EQ(fixed_header_bytes(c.value), header.size()) << c.value;
    // One byte short of the field: more is needed.
    EXPECT_EQ(frame_length(header.data(), header.size() - 1, SIZE_MAX, &n), MqttError::kIncomplete);
  }
  const Bytes five = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
  size_t n = 0;
  EXPECT_EQ(frame_length(five.data(), five.size(), SIZE_MAX, &n),
            MqttError::kRemainingLengthTooLong);
  const Bytes big = {0x30, 0x80, 0x01};  // 128 bytes of body
  EXPECT_EQ(frame_length(big.data(), big.size(), 130, &n), MqttError::kPacketTooLarge);
  EXPECT_EQ(n, 131u);  // so the client can skip it
  EXPECT_EQ(frame_length(big.data(), big.size(), 131, &n), MqttError::kOk);
}

TEST(MqttPacket, ParsesTheBrokersPackets) {
  Packet p;
  ASSERT_EQ(parse({0x20, 2, 1, 0}, &p), MqttError::kOk);
  EXPECT_EQ(p.type, PacketType::kConnack);
  EXPECT_TRUE(p.session_present);
  ASSERT_EQ(parse({0x20, 2, 0, 5}, &p), MqttError::kOk);
  EXPECT_EQ(p.return_code, 5);
  ASSERT_EQ(parse({0x40, 2, 0, 9}, &p), MqttError::kOk);
  EXPECT_EQ(p.type, PacketType::kPuback);
  EXPECT_EQ(p.packet_id, 9);
  ASSERT_EQ(parse({0x90, 3, 0, 4, 0x80}, &p), MqttError::kOk);
  EXPECT_EQ(p.type, PacketType::kSuback);
  EXPECT_EQ(p.suback_code, 0x80);
  ASSERT_EQ(parse({0xd0, 0}, &p), MqttError::kOk);
  EXPECT_EQ(p.type, PacketType::kPingresp);
  // PUBLISH QoS 1, retained, topic "a/b", id 0x0102, payload "hi" (p points into it).
  const Bytes publish = {0x33, 9, 0, 3, 'a', '/', 'b', 1, 2, 'h', 'i'};
  ASSERT_EQ(parse(publish, &p), MqttError::kOk);
  EXPECT_EQ(p.type, PacketType::kPublish);
  EXPECT_EQ(p.qos, 1);
  EXPECT_TRUE(p.retain);
  EXPECT_EQ(std::string(p.topic, p.topic_size), "a/b");
  EXPECT_EQ(p.packet_id, 0x0102);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(p.payload), p.payload_size), "hi");
  // QoS 0: no packet id, an empty payload is allowed.
  ASSERT_EQ(parse({0x30, 3, 0, 1, 't'}, &p), MqttError::kOk);
  EXPECT_EQ(p.payload_size, 0u);
}

TEST(MqttPacket, RefusesMalformedPacketsNamingTheFault) {
  const struct {
    Bytes bytes;
    MqttError error;
  } cases[] = {
      {{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, MqttError::kRemainingLengthTooLong},
      {{0x30, 5, 0, 9, 'a', 'b', 'c'}, MqttError::kMalformedTopicLength},
      {{0x30, 1, 0}, MqttError::kMalformedTopicLength},
      {{0x30, 2, 0, 0}, MqttError::kBadTopic},
      {{0x30, 5, 0, 3, 'a', '+', 'b'}, MqttError::kBadTopic},
      {{0x30, 5, 0, 3, 'a', '#', 'b'}, MqttError::kBadTopic},
      {{0x30, 5, 0, 3, 'a', 0, 'b'}, MqttError::kBadTopic},
      {{0x36, 5, 0, 1, 't', 0, 1}, MqttError::kBadQos},
      {{0x34, 5, 0, 1, 't', 0, 1}, MqttError::kBadQos},
      {{0x32, 5, 0, 1, 't', 0, 0}, MqttError::kZeroPacketId},
      {{0x32, 4, 0, 1, 't', 0}, MqttError::kBadLength},
      {{0x20, 3, 0, 0, 0}, MqttError::kBadLength},
      {{0x20, 2, 2, 0}, MqttError::kBadFlags},
      {{0x21, 2, 0, 0}, MqttError::kBadFlags},
      {{0x20, 2, 0, 6}, MqttError::kBadReturnCode},
      {{0x40, 2, 0, 0}, MqttError::kZeroPacketId},
      {{0x40, 1, 0}, MqttError::kBadLength},
      {{0x90, 3, 0, 1, 3}, MqttError::kBadReturnCode},
      {{0x90, 2, 0, 1}, MqttError::kBadLength},
      {{0xd0, 1, 0}, MqttError::kBadLength},
      {{0x00, 0}, MqttError::kUnknownPacketType},
      {{0xf0, 0}, MqttError::kUnknownPacketType},
      {{0x10, 0}, MqttError::kUnexpectedPacket},
      {{0x50, 2, 0, 1}, MqttError::kUnexpectedPacket},
      {{0x30, 3, 0, 1}, MqttError::kIncomplete},  // shorter than its Remaining Length
      {{0x30}, MqttError::kIncomplete},
  };
  for (const auto& c : cases) {
    Packet p;
    EXPECT_EQ(parse(c.bytes, &p), c.error)
        << "expected " << to_string(c.error) << " for a packet of " << c.bytes.size() << " B";
    EXPECT_STRNE(to_string(c.error), "unknown error");
  }
  // Bytes after the packet are not part of it.
  Packet p;
  EXPECT_EQ(parse({0xd0, 0, 0xd0}, &p), MqttError::kBadLength);
}

TEST(MqttPacket, APublishRoundTripsThroughEncoderAndParser) {
  const std::string payload(300, 'x');  // a two-byte Remaining Length
  uint8_t out[400];
  size_t n = 0;
  ASSERT_EQ(
      encode_publish("tinyfleet/v1/f/d/status", reinterpret_cast<const uint8_t*>(payload.data()),
                     payload.size(), 1, true, false, 77, out, sizeof out, &n),
      MqttError::kOk);
  size_t framed = 0;
  ASSERT_EQ(frame_length(out, n, sizeof out, &framed), MqttError::kOk);
  EXPECT_EQ(framed, n);
  Packet p;
  ASSERT_EQ(parse_packet(out, n, &p), MqttError::kOk);
  EXPECT_EQ(std::string(p.topic, p.topic_size), "tinyfleet/v1/f/d/status");
  EXPECT_EQ(p.packet_id, 77);
  EXPECT_TRUE(p.retain);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(p.payload), p.payload_size), payload);
}

TEST(MqttPacket, APublishHeadParsesBeforeItsPayloadHasCome) {
  // QoS 1, topic "a/b", id 0x0102, a 300-byte payload of which 4 bytes have come.
  const std::string payload(300, 'y');
  uint8_t out[400];
  size_t n = 0;
  ASSERT_EQ(encode_publish("a/b", reinterpret_cast<const uint8_t*>(payload.data()), payload.size(),
                           1, true, false, 0x0102, out, sizeof out, &n),
            MqttError::kOk);
  const size_t head = 3 + 2 + 3 + 2;  // fixed header (2-byte length), topic, packet id
  Packet p;
  size_t at = 0;
  ASSERT_EQ(parse_publish_head(out, head + 4, n, &p, &at), MqttError::kOk);
  EXPECT_EQ(at, head);
  EXPECT_EQ(std::string(p.topic, p.topic_size), "a/b");
  EXPECT_EQ(p.packet_id, 0x0102);
  EXPECT_EQ(p.qos, 1);
  EXPECT_TRUE(p.retain);
  EXPECT_EQ(p.payload, nullptr);
  EXPECT_EQ(p.payload_size, payload.size());
  // Until the head is complete: incomplete, at every cut.
  for (size_t cut = 0; cut < head; ++cut) {
    EXPECT_EQ(parse_publish_head(out, cut, n, &p, &at), MqttError::kIncomplete) << cut;
  }
  // The same faults as a whole PUBLISH, named; another packet type is not a PUBLISH.
  const struct {
    Bytes bytes;
    size_t packet_bytes;
    MqttError error;
  } cases[] = {
      {{0x30, 0x80, 0x02, 0, 0}, 259, MqttError::kBadTopic},
      {{0x30, 0x80, 0x02, 1, 0}, 259, MqttError::kMalformedTopicLength},
      {{0x34, 0x80, 0x02, 0, 1, 't', 0, 1}, 259, MqttError::kBadQos},
      {{0x32, 0x80, 0x02, 0, 1, 't', 0, 0}, 259, MqttError::kZeroPacketId},
      {{0x30, 0x80, 0x02, 0, 2, 'a', '#'}, 259, MqttError::kBadTopic},
      {{0x30, 0x80, 0x02, 0, 1, 't'}, 300, MqttError::kBadLength},  // not what it frames
      {{0x90, 0x80, 0x02, 0, 1}, 259, MqttError::kUnexpectedPacket},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_publish_head(c.bytes.data(), c.bytes.size(), c.packet_bytes, &p, &at), c.error)
        << "expected " << to_string(c.error);
  }
}

}  // namespace
