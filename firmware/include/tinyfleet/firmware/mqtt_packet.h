#pragma once

// MQTT 3.1.1 (OASIS standard, 2014) packets as the firmware's client sends and receives
// them: encoders into a caller's buffer and a bounded parser of the packets a broker
// sends a client. Portable C++17, no heap, no exceptions; the same code runs on the
// Cortex-M4 and on the host (tests, fuzzer). docs/firmware.md, "MQTT client".
#include <cstddef>
#include <cstdint>

namespace tinyfleet::firmware::mqtt {

enum class PacketType : uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kPubrec = 5,
  kPubrel = 6,
  kPubcomp = 7,
  kSubscribe = 8,
  kSuback = 9,
  kUnsubscribe = 10,
  kUnsuback = 11,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
};

// What is wrong with a packet (parser) or a request (encoders); to_string names it.
enum class MqttError : uint8_t {
  kOk = 0,
  kIncomplete,              // more bytes are needed to know or hold the packet
  kRemainingLengthTooLong,  // the Remaining Length field runs past 4 bytes (2.2.3)
  kPacketTooLarge,          // the packet is larger than the receive buffer
  kUnknownPacketType,       // type 0 or 15
  kUnexpectedPacket,        // a type a broker never sends a client (CONNECT, SUBSCRIBE...)
  kBadFlags,                // fixed-header flags or CONNACK reserved bits not as specified
  kBadLength,               // the Remaining Length does not fit the packet type
  kMalformedTopicLength,    // a topic length field runs past the packet
  kBadTopic,                // empty topic, a wildcard or NUL in a PUBLISH topic name
  kBadQos,                  // QoS 3 (malformed), or QoS 2 (this client subscribes at <= 1)
  kZeroPacketId,            // a packet identifier of 0 (2.3.1)
  kBadReturnCode,           // CONNACK code > 5, SUBACK code not 0, 1, 2 or 0x80
  kBufferTooSmall,          // encoder: the packet does not fit the output buffer
  kFieldTooLong,            // encoder: a string over 65535 bytes or a packet over 256 MB
  kNotConnected,            // client: subscribe/publish while not connected
};
const char* to_string(MqttError error);

// CONNACK return codes (3.2.2.3).
enum class ConnectReturn : uint8_t {
  kAccepted = 0,
  kBadProtocolVersion = 1,
  kIdentifierRejected = 2,
  kServerUnavailable = 3,
  kBadUserNameOrPassword = 4,
  kNotAuthorized = 5,
};

// The largest Remaining Length the 4-byte field holds (2.2.3).
inline constexpr uint32_t kMaxRemainingLength = 268435455u;
// Fixed header bytes for a given Remaining Length (1 + 1..4).
size_t fixed_header_bytes(uint32_t remaining_length);

// The size of the first packet of data[size], once its fixed header is complete:
// kIncomplete while the Remaining Length field is still open, kRemainingLengthTooLong
// on a fifth length byte, kPacketTooLarge when the packet exceeds `capacity`
// (*packet_bytes is then set, so a reader can skip it).
MqttError frame_length(const uint8_t* data, size_t size, size_t capacity, size_t* packet_bytes);

// A packet a broker sends a client, pointing into the parsed bytes.
struct Packet {
  PacketType type = PacketType::kPingresp;
  uint16_t packet_id = 0;  // PUBLISH (QoS > 0), PUBACK, SUBACK, UNSUBACK
  // CONNACK
  bool session_present = false;
  uint8_t return_code = 0;
  // PUBLISH
  uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  const char* topic = nullptr;  // not NUL-terminated
  size_t topic_size = 0;
  const uint8_t* payload = nullptr;
  size_t payload_size = 0;
  // SUBACK: the first return code (this client subscribes one filter per packet)
  uint8_t suback_code = 0;
};

// Parses exactly one complete packet data[size] (as frame_length measured it).
MqttError parse_packet(const uint8_t* data, size_t size, Packet* out);

// The head of a PUBLISH of `packet_bytes` (frame_length) of which data[size] has come:
// its fixed header, topic and packet id, checked as parse_packet checks them. *head_bytes
// is where the payload starts; out->payload is null and out->payload_size the whole
// payload's size. kIncomplete until the head is in data[size]; kUnexpectedPacket for
// another packet type. Lets a client stream a payload larger than its receive buffer.
MqttError parse_publish_head(const uint8_t* data, size_t size, size_t packet_bytes, Packet* out,
                             size_t* head_bytes);

struct ConnectOptions {
  const char* client_id = "";  // may be empty with clean_session (3.1.3.1)
  const char* username = nullptr;
  const char* password = nullptr;
  uint16_t keep_alive_s = 60;
  bool clean_session = true;
  const char* will_topic = nullptr;  // null: no will
  const uint8_t* will_payload = nullptr;
  size_t will_payload_size = 0;
  uint8_t will_qos = 0;
  bool will_retain = false;
};

// Each writes one packet into out[capacity]; *written is its size (0 on failure).
MqttError encode_connect(const ConnectOptions& options, uint8_t* out, size_t capacity,
                         size_t* written);
MqttError encode_publish(const char* topic, const uint8_t* payload, size_t payload_size,
                         uint8_t qos, bool retain, bool dup, uint16_t packet_id, uint8_t* out,
                         size_t capacity, size_t* written);
MqttError encode_subscribe(uint16_t packet_id, const char* filter, uint8_t qos, uint8_t* out,
                           size_t capacity, size_t* written);
MqttError encode_puback(uint16_t packet_id, uint8_t* out, size_t capacity, size_t* written);
MqttError encode_pingreq(uint8_t* out, size_t capacity, size_t* written);
MqttError encode_disconnect(uint8_t* out, size_t capacity, size_t* written);

}  // namespace tinyfleet::firmware::mqtt
