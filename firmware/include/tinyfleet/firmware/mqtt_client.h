#pragma once

// A small MQTT 3.1.1 client for a microcontroller: one connection over a byte-stream
// transport port (a UART to a modem in transparent mode, a TCP socket on the host),
// static buffers, no heap, no exceptions, no threads: the firmware calls poll() from
// its main loop. CONNECT (clean session, keep-alive, user name/password, will),
// SUBSCRIBE, PUBLISH QoS 0 and 1 (PUBACK both ways), PINGREQ, DISCONNECT, and reconnect
// with exponential back-off. docs/firmware.md, "MQTT client".
#include <cstddef>
#include <cstdint>

#include "tinyfleet/firmware/mqtt_packet.h"

namespace tinyfleet::firmware::mqtt {

// The transport port. All calls return at once (the client never blocks).
class Transport {
 public:
  virtual ~Transport() = default;
  // Starts a connection to the broker (TCP connect; a UART already joined to it: true).
  virtual bool open() = 0;
  virtual void close() = 0;
  // Bytes taken (0: none now, try again), or < 0: the link is lost.
  virtual int write(const uint8_t* data, size_t size) = 0;
  // Bytes read into out[capacity] (0: none now), or < 0: the link is lost.
  virtual int read(uint8_t* out, size_t capacity) = 0;
  // A monotonic millisecond clock (wraps after 49 days; the client compares differences).
  virtual uint32_t now_ms() = 0;
};

struct Message {
  const char* topic;  // not NUL-terminated
  size_t topic_size;
  const uint8_t* payload;
  size_t payload_size;
  uint8_t qos;
  bool retain;
};

// Why a connection ended (on_disconnected).
enum class LinkEvent : uint8_t {
  kClosedByClient,  // disconnect()
  kTransportLost,   // the transport reported the link lost (or would not open)
  kConnackTimeout,  // no CONNACK within connect_timeout_ms
  kPingTimeout,     // no PINGRESP within keep-alive
  kRefused,         // CONNACK with a refusal code (see on_refused)
  kProtocolError,   // the broker sent a malformed packet (see last_error())
};
const char* to_string(LinkEvent event);

// What the client tells the firmware, from inside poll().
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void on_connected(bool /*session_present*/) {}
  virtual void on_refused(ConnectReturn /*code*/) {}
  virtual void on_disconnected(LinkEvent /*why*/) {}
  virtual void on_message(const Message& /*message*/) {}
  virtual void on_suback(uint16_t /*packet_id*/, uint8_t /*granted_qos_or_0x80*/) {}
  virtual void on_puback(uint16_t /*packet_id*/) {}
  // A packet larger than the receive buffer was skipped (never delivered).
  virtual void on_dropped(size_t /*packet_bytes*/) {}
};

// Where a PUBLISH larger than the receive buffer may go instead of being skipped: the
// client parses its head (topic, packet id) in the receive buffer, asks begin(), then
// hands the payload over in pieces as they arrive, so a device takes a large message
// (an 8 KB offer) into a buffer it has anyway, with a receive buffer of ~1 KB.
class PayloadSink {
 public:
  virtual ~PayloadSink() = default;
  // A large PUBLISH arrives: true to take it (then piece() gets every payload byte in
  // order and end() follows, before the PUBACK of a QoS 1 message); false skips it
  // (on_dropped). A link lost in between ends the stream without end().
  virtual bool begin(const Message& head) = 0;  // head.payload null, payload_size the whole
  virtual void piece(const uint8_t* data, size_t size) = 0;
  virtual void end() = 0;
};

struct ClientOptions {
  ConnectOptions connect;
  PayloadSink* large_payloads = nullptr;  // null: a packet over the receive buffer is skipped
  uint32_t connect_timeout_ms = 10000;
  uint32_t backoff_initial_ms = 1000;  // first retry after a lost or refused connection
  uint32_t backoff_max_ms = 60000;     // doubled after each failure up to this
};

enum class ClientState : uint8_t { kStopped, kBackoff, kConnecting, kConnected };

struct ClientCounters {
  uint32_t connects = 0;  // CONNACKs accepted
  uint32_t attempts = 0;  // CONNECTs sent
  uint32_t pings_sent = 0;
  uint32_t pongs = 0;
  uint32_t published = 0;
  uint32_t received = 0;
  uint32_t dropped = 0;
};

// The client over caller-owned buffers; StaticMqttClient below owns them.
class MqttClient {
 public:
  MqttClient(Transport& transport, Handler& handler, uint8_t* tx, size_t tx_capacity, uint8_t* rx,
             size_t rx_capacity);

  // Starts connecting on the next poll(); `options` (and its strings) must outlive the client.
  void start(const ClientOptions& options);
  // Reads, handles packets, flushes, keeps the connection alive, reconnects. Call often.
  void poll();
  // Queues a DISCONNECT, flushes what it can, closes, and stops reconnecting.
  void disconnect();

  // Each queues one packet (sent by this call and poll()); kBufferTooSmall while the
  // transmit buffer is too full. Only while connected (else kNotConnected).
  MqttError subscribe(const char* filter, uint8_t qos, uint16_t* packet_id);
  MqttError publish(const char* topic, const uint8_t* payload, size_t size, uint8_t qos,
                    bool retain, uint16_t* packet_id);

  ClientState state() const { return state_; }
  const ClientCounters& counters() const { return counters_; }
  MqttError last_error() const { return last_error_; }
  // How long the client waits in kBackoff before its next CONNECT.
  uint32_t retry_wait_ms() const { return wait_ms_; }

 private:
  void begin_connect(uint32_t now);
  void lose(LinkEvent why, uint32_t now);
  // `size` by reference: it is read after `encoded` (the encoder's call) has set it.
  bool queue(MqttError encoded, const size_t& size);
  void flush(uint32_t now);
  void receive(uint32_t now);
  void handle(const Packet& packet, uint32_t now);
  // A PUBLISH over the receive buffer, its fixed header in rx_: true while its head is
  // still coming or once the sink took it; false to skip it.
  bool stream_large(size_t length, uint32_t now);
  void end_stream(uint32_t now);
  void acknowledge(uint16_t packet_id, uint32_t now);  // PUBACK of a QoS 1 PUBLISH
  void keep_alive(uint32_t now);
  uint16_t next_id();

  Transport& transport_;
  Handler& handler_;
  uint8_t* tx_;
  size_t tx_capacity_;
  size_t tx_size_ = 0;
  uint8_t* rx_;
  size_t rx_capacity_;
  size_t rx_size_ = 0;
  size_t skip_ = 0;         // bytes of an oversized packet still to discard
  size_t stream_ = 0;       // bytes of a large payload still to hand to the sink
  uint16_t stream_id_ = 0;  // its packet id (0: QoS 0)
  const ClientOptions* options_ = nullptr;
  ClientState state_ = ClientState::kStopped;
  uint32_t state_since_ = 0;
  uint32_t last_sent_ = 0;
  uint32_t ping_sent_at_ = 0;
  bool ping_outstanding_ = false;
  uint32_t backoff_ms_ = 0;  // the next wait after a failure
  uint32_t wait_ms_ = 0;     // the current wait in kBackoff
  uint16_t last_id_ = 0;
  MqttError last_error_ = MqttError::kOk;
  ClientCounters counters_;
};

template <size_t kTxBytes, size_t kRxBytes>
struct MqttBuffers {
  uint8_t tx[kTxBytes];
  uint8_t rx[kRxBytes];
};

// The client with its buffers inside: kTxBytes holds the largest packet the firmware
// sends (plus a PUBACK or PINGREQ queued behind it), kRxBytes the largest it takes.
template <size_t kTxBytes, size_t kRxBytes>
class StaticMqttClient : private MqttBuffers<kTxBytes, kRxBytes>, public MqttClient {
  static_assert(kTxBytes >= 64 && kRxBytes >= 16, "buffers too small for CONNECT/CONNACK");

 public:
  StaticMqttClient(Transport& transport, Handler& handler)
      : MqttBuffers<kTxBytes, kRxBytes>(),
        MqttClient(transport, handler, this->tx, kTxBytes, this->rx, kRxBytes) {}
};

}  // namespace tinyfleet::firmware::mqtt
