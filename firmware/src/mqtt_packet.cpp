// MQTT 3.1.1 packet encoders and the bounded parser of broker -> client packets.
#include "tinyfleet/firmware/mqtt_packet.h"

#include <cstring>

namespace tinyfleet::firmware::mqtt {
namespace {

constexpr size_t kMaxString = 65535;

// Writes into out[capacity]; any write past the end marks the writer failed.
class Writer {
 public:
  Writer(uint8_t* out, size_t capacity) : out_(out), capacity_(capacity) {}
  void byte(uint8_t b) {
    if (size_ < capacity_) {
      out_[size_] = b;
    } else {
      overflow_ = true;
    }
    ++size_;
  }
  void u16(uint16_t v) {
    byte(static_cast<uint8_t>(v >> 8));
    byte(static_cast<uint8_t>(v));
  }
  void bytes(const uint8_t* data, size_t size) {
    const size_t room = size_ < capacity_ ? capacity_ - size_ : 0;
    if (size > room) {
      overflow_ = true;
      size_ += size;
      return;
    }
    if (size != 0) std::memcpy(out_ + size_, data, size);
    size_ += size;
  }
  void string(const char* s, size_t size) {
    u16(static_cast<uint16_t>(size));
    bytes(reinterpret_cast<const uint8_t*>(s), size);
  }
  void remaining_length(uint32_t v) {
    do {
      uint8_t b = v % 128;
      v /= 128;
      if (v > 0) b |= 0x80;
      byte(b);
    } while (v > 0);
  }
  MqttError finish(size_t* written) const {
    *written = overflow_ ? 0 : size_;
    return overflow_ ? MqttError::kBufferTooSmall : MqttError::kOk;
  }

 private:
  uint8_t* out_;
  size_t capacity_;
  size_t size_ = 0;
  bool overflow_ = false;
};

size_t length_of(const char* s) { return s ? std::strlen(s) : 0; }

// Starts a packet with its fixed header; false if `remaining` cannot be encoded.
bool begin(Writer& w, uint8_t first_byte, size_t remaining) {
  if (remaining > kMaxRemainingLength) return false;
  w.byte(first_byte);
  w.remaining_length(static_cast<uint32_t>(remaining));
  return true;
}

uint16_t read_u16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

MqttError parse_publish(uint8_t flags, const uint8_t* body, size_t size, Packet* out) {
  out->dup = (flags & 0x08) != 0;
  out->qos = (flags >> 1) & 0x03;
  out->retain = (flags & 0x01) != 0;
  if (out->qos == 3 || out->qos == 2) return MqttError::kBadQos;
  if (size < 2) return MqttError::kMalformedTopicLength;
  const size_t topic_size = read_u16(body);
  if (topic_size > size - 2) return MqttError::kMalformedTopicLength;
  const char* topic = reinterpret_cast<const char*>(body + 2);
  if (topic_size == 0) return MqttError::kBadTopic;
  for (size_t i = 0; i < topic_size; ++i) {
    if (topic[i] == '\0' || topic[i] == '+' || topic[i] == '#') return MqttError::kBadTopic;
  }
  size_t at = 2 + topic_size;
  if (out->qos > 0) {
    if (size - at < 2) return MqttError::kBadLength;
    out->packet_id = read_u16(body + at);
    if (out->packet_id == 0) return MqttError::kZeroPacketId;
    at += 2;
  }
  out->topic = topic;
  out->topic_size = topic_size;
  out->payload = body + at;
  out->payload_size = size - at;
  return MqttError::kOk;
}

}  // namespace

const char* to_string(MqttError error) {
  switch (error) {
    case MqttError::kOk:
      return "ok";
    case MqttError::kIncomplete:
      return "incomplete packet";
    case MqttError::kRemainingLengthTooLong:
      return "remaining length longer than 4 bytes";
    case MqttError::kPacketTooLarge:
      return "packet larger than the receive buffer";
    case MqttError::kUnknownPacketType:
      return "unknown packet type";
    case MqttError::kUnexpectedPacket:
      return "packet type a broker does not send a client";
    case MqttError::kBadFlags:
      return "fixed-header or reserved flags not as specified";
    case MqttError::kBadLength:
      return "remaining length does not fit the packet type";
    case MqttError::kMalformedTopicLength:
      return "topic length runs past the packet";
    case MqttError::kBadTopic:
      return "empty topic, wildcard or NUL in a topic name";
    case MqttError::kBadQos:
      return "QoS 3, or QoS 2 this client does not subscribe at";
    case MqttError::kZeroPacketId:
      return "packet identifier 0";
    case MqttError::kBadReturnCode:
      return "return code out of range";
    case MqttError::kBufferTooSmall:
      return "packet does not fit the buffer";
    case MqttError::kFieldTooLong:
      return "string over 65535 bytes or packet over 256 MB";
    case MqttError::kNotConnected:
      return "not connected";
  }
  return "unknown error";
}

size_t fixed_header_bytes(uint32_t remaining_length) {
  if (remaining_length < 128u) return 2;
  if (remaining_length < 16384u) return 3;
  if (remaining_length < 2097152u) return 4;
  return 5;
}

MqttError frame_length(const uint8_t* data, size_t size, size_t capacity, size_t* packet_bytes) {
  *packet_bytes = 0;
  uint32_t remaining = 0;
  uint32_t multiplier = 1;
  for (size_t i = 1; i <= 4; ++i) {
    if (i >= size) return MqttError::kIncomplete;
    remaining += (data[i] & 0x7fu) * multiplier;
    if ((data[i] & 0x80u) == 0) {
      *packet_bytes = i + 1 + remaining;
      return *packet_bytes > capacity ? MqttError::kPacketTooLarge : MqttError::kOk;
    }
    multiplier *= 128;
  }
  return MqttError::kRemainingLengthTooLong;
}

MqttError parse_packet(const uint8_t* data, size_t size, Packet* out) {
  *out = Packet{};
  size_t total = 0;
  const MqttError framed = frame_length(data, size, size, &total);
  if (framed == MqttError::kPacketTooLarge) return MqttError::kIncomplete;
  if (framed != MqttError::kOk) return framed;
  if (total != size) return MqttError::kBadLength;
  const uint8_t type = data[0] >> 4;
  const uint8_t flags = data[0] & 0x0f;
  // frame_length found the Remaining Length's last byte within data[1..4].
  size_t body_at = 1;
  while (data[body_at] & 0x80u) ++body_at;
  ++body_at;
  const uint8_t* body = data + body_at;
  const size_t body_size = size - body_at;
  if (type == 0 || type == 15) return MqttError::kUnknownPacketType;
  out->type = static_cast<PacketType>(type);
  switch (out->type) {
    case PacketType::kPublish:
      return parse_publish(flags, body, body_size, out);
    case PacketType::kConnack:
      if (flags != 0) return MqttError::kBadFlags;
      if (body_size != 2) return MqttError::kBadLength;
      if ((body[0] & 0xfe) != 0) return MqttError::kBadFlags;
      if (body[1] > 5) return MqttError::kBadReturnCode;
      out->session_present = (body[0] & 0x01) != 0;
      out->return_code = body[1];
      return MqttError::kOk;
    case PacketType::kPuback:
    case PacketType::kUnsuback:
      if (flags != 0) return MqttError::kBadFlags;
      if (body_size != 2) return MqttError::kBadLength;
      out->packet_id = read_u16(body);
      return out->packet_id == 0 ? MqttError::kZeroPacketId : MqttError::kOk;
    case PacketType::kSuback:
      if (flags != 0) return MqttError::kBadFlags;
      if (body_size < 3) return MqttError::kBadLength;
      out->packet_id = read_u16(body);
      if (out->packet_id == 0) return MqttError::kZeroPacketId;
      for (size_t i = 2; i < body_size; ++i) {
        if (body[i] > 2 && body[i] != 0x80) return MqttError::kBadReturnCode;
      }
      out->suback_code = body[2];
      return MqttError::kOk;
    case PacketType::kPingresp:
      if (flags != 0) return MqttError::kBadFlags;
      return body_size == 0 ? MqttError::kOk : MqttError::kBadLength;
    default:
      // CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT go to a broker; PUBREC,
      // PUBREL, PUBCOMP belong to QoS 2, which this client never subscribes at.
      return MqttError::kUnexpectedPacket;
  }
}

MqttError parse_publish_head(const uint8_t* data, size_t size, size_t packet_bytes, Packet* out,
                             size_t* head_bytes) {
  *out = Packet{};
  *head_bytes = 0;
  size_t framed = 0;
  const MqttError e = frame_length(data, size, packet_bytes, &framed);
  if (e != MqttError::kOk) return e;
  if (framed != packet_bytes) return MqttError::kBadLength;
  if ((data[0] >> 4) != static_cast<uint8_t>(PacketType::kPublish)) {
    return MqttError::kUnexpectedPacket;
  }
  out->type = PacketType::kPublish;
  size_t body_at = 1;
  while (data[body_at] & 0x80u) ++body_at;
  ++body_at;
  const size_t body_size = packet_bytes - body_at;
  if (size < body_at + 2) return MqttError::kIncomplete;
  if (body_size < 2) return MqttError::kMalformedTopicLength;
  const size_t topic_size = read_u16(data + body_at);
  if (topic_size > body_size - 2) return MqttError::kMalformedTopicLength;
  const uint8_t qos = (data[0] >> 1) & 0x03;
  const size_t head = 2 + topic_size + (qos == 1 ? 2 : 0);
  if (head > body_size) return MqttError::kBadLength;
  if (size < body_at + head) return MqttError::kIncomplete;
  // The head alone is a PUBLISH with an empty payload: the same checks as a whole one.
  const MqttError parsed = parse_publish(data[0] & 0x0f, data + body_at, head, out);
  if (parsed != MqttError::kOk) return parsed;
  out->payload = nullptr;
  out->payload_size = body_size - head;
  *head_bytes = body_at + head;
  return MqttError::kOk;
}

MqttError encode_connect(const ConnectOptions& o, uint8_t* out, size_t capacity, size_t* written) {
  *written = 0;
  const size_t id = length_of(o.client_id), user = length_of(o.username),
               pass = length_of(o.password), will = length_of(o.will_topic);
  if (id > kMaxString || user > kMaxString || pass > kMaxString || will > kMaxString ||
      o.will_payload_size > kMaxString) {
    return MqttError::kFieldTooLong;
  }
  if (o.will_qos > 1) return MqttError::kBadQos;
  uint8_t flags = o.clean_session ? 0x02 : 0x00;
  size_t remaining = 10 + 2 + id;  // variable header, client id
  if (o.will_topic) {
    flags |= 0x04 | static_cast<uint8_t>(o.will_qos << 3) | (o.will_retain ? 0x20 : 0);
    remaining += 2 + will + 2 + o.will_payload_size;
  }
  if (o.username) {
    flags |= 0x80;
    remaining += 2 + user;
  }
  if (o.password) {
    flags |= 0x40;
    remaining += 2 + pass;
  }
  Writer w(out, capacity);
  if (!begin(w, 0x10, remaining)) return MqttError::kFieldTooLong;
  w.string("MQTT", 4);
  w.byte(4);  // protocol level 3.1.1
  w.byte(flags);
  w.u16(o.keep_alive_s);
  w.string(o.client_id ? o.client_id : "", id);
  if (o.will_topic) {
    w.string(o.will_topic, will);
    w.u16(static_cast<uint16_t>(o.will_payload_size));
    w.bytes(o.will_payload, o.will_payload_size);
  }
  if (o.username) w.string(o.username, user);
  if (o.password) w.string(o.password, pass);
  return w.finish(written);
}

MqttError encode_publish(const char* topic, const uint8_t* payload, size_t payload_size,
                         uint8_t qos, bool retain, bool dup, uint16_t packet_id, uint8_t* out,
                         size_t capacity, size_t* written) {
  *written = 0;
  const size_t topic_size = length_of(topic);
  if (topic_size > kMaxString) return MqttError::kFieldTooLong;
  if (topic_size == 0) return MqttError::kBadTopic;
  if (qos > 1) return MqttError::kBadQos;
  if (qos > 0 && packet_id == 0) return MqttError::kZeroPacketId;
  const uint8_t first =
      static_cast<uint8_t>(0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0));
  Writer w(out, capacity);
  if (payload_size > kMaxRemainingLength ||
      !begin(w, first, 2 + topic_size + (qos > 0 ? 2 : 0) + payload_size)) {
    return MqttError::kFieldTooLong;
  }
  w.string(topic, topic_size);
  if (qos > 0) w.u16(packet_id);
  w.bytes(payload, payload_size);
  return w.finish(written);
}

MqttError encode_subscribe(uint16_t packet_id, const char* filter, uint8_t qos, uint8_t* out,
                           size_t capacity, size_t* written) {
  *written = 0;
  const size_t size = length_of(filter);
  if (size > kMaxString) return MqttError::kFieldTooLong;
  if (size == 0) return MqttError::kBadTopic;
  if (qos > 1) return MqttError::kBadQos;
  if (packet_id == 0) return MqttError::kZeroPacketId;
  Writer w(out, capacity);
  begin(w, 0x82, 2 + 2 + size + 1);
  w.u16(packet_id);
  w.string(filter, size);
  w.byte(qos);
  return w.finish(written);
}

MqttError encode_puback(uint16_t packet_id, uint8_t* out, size_t capacity, size_t* written) {
  *written = 0;
  if (packet_id == 0) return MqttError::kZeroPacketId;
  Writer w(out, capacity);
  begin(w, 0x40, 2);
  w.u16(packet_id);
  return w.finish(written);
}

MqttError encode_pingreq(uint8_t* out, size_t capacity, size_t* written) {
  Writer w(out, capacity);
  begin(w, 0xc0, 0);
  return w.finish(written);
}

MqttError encode_disconnect(uint8_t* out, size_t capacity, size_t* written) {
  Writer w(out, capacity);
  begin(w, 0xe0, 0);
  return w.finish(written);
}

}  // namespace tinyfleet::firmware::mqtt
