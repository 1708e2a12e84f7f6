// Arbitrary bytes from a broker: the firmware MQTT client's packet parser
// (frame_length, parse_packet; a parsed PUBLISH must re-encode to a packet that parses
// to the same fields), and the client itself reading them after its CONNACK, in pieces
// of arbitrary size, through a 64-byte receive buffer (oversized packets are skipped, or
// streamed to a PayloadSink in pieces).
#include <cstring>

#include "tinyfleet/firmware/mqtt_client.h"
#include "tinyfleet/firmware/mqtt_packet.h"

using namespace tinyfleet::firmware::mqtt;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void parse_one(const uint8_t* data, size_t size) {
  size_t length = 0;
  if (frame_length(data, size, size, &length) != MqttError::kOk) return;
  Packet p;
  if (parse_packet(data, length, &p) != MqttError::kOk || p.type != PacketType::kPublish) return;
  check(p.topic_size > 0 && p.topic + p.topic_size <= reinterpret_cast<const char*>(data + size));
  check(p.payload + p.payload_size == data + length);
  static char topic[65536];
  std::memcpy(topic, p.topic, p.topic_size);
  topic[p.topic_size] = '\0';
  static uint8_t out[70000];
  size_t written = 0;
  if (encode_publish(topic, p.payload, p.payload_size, p.qos, p.retain, p.dup, p.packet_id, out,
                     sizeof out, &written) != MqttError::kOk) {
    return;
  }
  Packet q;
  check(parse_packet(out, written, &q) == MqttError::kOk);
  check(q.topic_size == p.topic_size && std::memcmp(q.topic, p.topic, p.topic_size) == 0);
  check(q.payload_size == p.payload_size && q.qos == p.qos && q.retain == p.retain &&
        q.packet_id == p.packet_id);
}

// A broker that has accepted the connection, then sends the fuzzer's bytes.
class FuzzTransport final : public Transport {
 public:
  FuzzTransport(const uint8_t* data, size_t size, size_t piece)
      : data_(data), size_(size), piece_(piece) {}
  bool open() override {
    at_ = 0;
    connack_sent_ = false;
    return true;
  }
  void close() override {}
  int write(const uint8_t*, size_t size) override { return static_cast<int>(size); }
  int read(uint8_t* out, size_t capacity) override {
    if (!connack_sent_) {
      static const uint8_t connack[] = {0x20, 2, 0, 0};
      if (capacity < sizeof connack) return 0;
      std::memcpy(out, connack, sizeof connack);
      connack_sent_ = true;
      return sizeof connack;
    }
    size_t n = size_ - at_;
    if (n > piece_) n = piece_;
    if (n > capacity) n = capacity;
    std::memcpy(out, data_ + at_, n);
    at_ += n;
    return static_cast<int>(n);
  }
  uint32_t now_ms() override { return now_ += 7; }
  bool done() const { return at_ == size_; }

 private:
  const uint8_t* data_;
  size_t size_, piece_, at_ = 0;
  bool connack_sent_ = false;
  uint32_t now_ = 0;
};

struct Sink : Handler {
  void on_message(const Message& m) override { check(m.topic_size > 0 && m.qos <= 1); }
};

// Takes every other large PUBLISH (the rest are skipped): the pieces must add up to the
// size its head announced, never more.
struct Streamed : PayloadSink {
  bool begin(const Message& head) override {
    check(head.topic_size > 0 && head.qos <= 1 && head.payload == nullptr);
    expected = head.payload_size;
    got = 0;
    return (++heads & 1) != 0;
  }
  void piece(const uint8_t* data, size_t size) override {
    check(data != nullptr && size > 0);
    got += size;
    check(got <= expected);
  }
  void end() override { check(got == expected); }
  size_t expected = 0, got = 0;
  unsigned heads = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  parse_one(data, size);
  if (size == 0) return 0;
  FuzzTransport transport(data + 1, size - 1, 1 + data[0] % 64);
  Sink sink;
  StaticMqttClient<64, 64> client(transport, sink);
  ClientOptions options;
  options.connect.client_id = "fuzz";
  Streamed streamed;
  if (data[0] & 0x40) options.large_payloads = &streamed;
  client.start(options);
  for (int i = 0; i < 4096 && !transport.done() && client.state() != ClientState::kBackoff; ++i) {
    client.poll();
  }
  return 0;
}
