#pragma once

// The agent core over the firmware's MQTT client: the device_agent::Outbox port (status
// retained at QoS 1, telemetry at QoS 0, chunk requests framed by update/chunk_framing.h,
// each on its topic of update/topics.h) and the client's Handler, which gives the offer
// and chunk topics to UpdateAgent::on_offer / on_chunk, subscribes both and calls
// on_reconnect on every connect, and leaves a will ("offline", retained) on the presence
// topic. An offer larger than the receive buffer streams into a buffer the firmware gives
// (PayloadSink), so the receive buffer stays ~1 KB. No heap. docs/firmware.md, "MQTT outbox".
#include <cstddef>
#include <cstdint>

#include "tinyfleet/device_agent/ports.h"
#include "tinyfleet/firmware/mqtt_client.h"
#include "tinyfleet/update/presence_message.h"
#include "tinyfleet/update/topics.h"

namespace tinyfleet::device_agent {
class UpdateAgent;
}

namespace tinyfleet::firmware {

struct OutboxCounters {
  uint32_t offers = 0;           // offers given to the agent (streamed ones included)
  uint32_t streamed_offers = 0;  // of them, through the offer buffer
  uint32_t chunks = 0;           // chunk answers given to the agent
  uint32_t chunk_requests = 0;   // requests published
  uint32_t ignored = 0;          // messages on no topic of ours, or malformed chunks
};

class MqttOutbox : public device_agent::Outbox, public mqtt::Handler, public mqtt::PayloadSink {
 public:
  // tx/rx: the client's buffers (rx bounds the chunk answers: requests are cut to fit it).
  // offer_buffer: where an offer over rx is streamed, at least update::kMaxOfferBytes to
  // take any, aligned to 8 (the agent checks the offer where it lies); an offer that fits
  // rx is copied there too before the agent sees it (in rx it starts at any byte). It is busy only
  // while such an offer arrives, and on_offer copies the offer out at once, so a buffer the agent
  // uses only at other times serves (the reference firmware lends the delta workspace, which the
  // agent touches only while patching).
  MqttOutbox(mqtt::Transport& transport, uint8_t* tx, size_t tx_capacity, uint8_t* rx,
             size_t rx_capacity, uint8_t* offer_buffer, size_t offer_capacity);

  // The device's topics; false when a name cannot be a topic level.
  bool configure(const char* fleet, const char* device);
  void attach(device_agent::UpdateAgent* agent) { agent_ = agent; }
  // Sets the will and the sink in `options` (which must outlive the client) and starts.
  void start(mqtt::ClientOptions& options);
  // The client's poll, then the agent's (chunk timeouts), except while an offer streams in.
  void poll();
  // Says "offline" on the presence topic (a clean disconnect leaves no will), waits up to
  // kCloseWaitMs for the broker's acknowledgement (so what was published before has
  // arrived), and disconnects.
  void disconnect();
  static constexpr uint32_t kCloseWaitMs = 2000;
  // Whether the last disconnect() had the broker's acknowledgement before it closed.
  bool close_acknowledged() const { return closing_acked_; }

  mqtt::MqttClient& client() { return client_; }
  const OutboxCounters& counters() const { return counters_; }
  // The most chunk data a request asks for: what fits the receive buffer.
  uint32_t max_chunk_bytes() const { return max_chunk_; }

  // device_agent::Outbox
  bool publish_status(const uint8_t* message, size_t size) override;
  bool publish_telemetry(const uint8_t* message, size_t size) override;
  bool request_chunk(uint64_t release, uint64_t offset, uint32_t length) override;

  // mqtt::Handler
  void on_connected(bool session_present) override;
  void on_message(const mqtt::Message& message) override;
  void on_puback(uint16_t packet_id) override;

  // mqtt::PayloadSink (offers only)
  bool begin(const mqtt::Message& head) override;
  void piece(const uint8_t* data, size_t size) override;
  void end() override;

 private:
  bool publish(update::TopicKind kind, const uint8_t* data, size_t size, uint8_t qos, bool retain);
  bool topic(update::TopicKind kind, char* out, size_t capacity) const;
  bool is_topic(const char* topic, size_t size, update::TopicKind kind) const;
  void presence_bytes(update::Presence p, uint8_t* out) const;

  mqtt::MqttClient client_;
  mqtt::Transport& transport_;
  device_agent::UpdateAgent* agent_ = nullptr;
  bool closing_ = false;  // disconnect() waits for closing_id_'s acknowledgement
  bool closing_acked_ = false;
  uint16_t closing_id_ = 0;
  uint8_t* offer_;
  size_t offer_capacity_;
  size_t offer_size_ = 0;
  bool streaming_ = false;
  size_t rx_capacity_;
  uint32_t max_chunk_ = 0;
  // "tinyfleet/v1/{fleet}/{device}/": each topic is built from it when needed.
  char prefix_[update::kMaxTopicBytes] = {};
  size_t prefix_size_ = 0;
  char will_topic_[update::kMaxTopicBytes] = {};
  uint8_t will_[update::kPresenceBytes] = {};
  OutboxCounters counters_;
};

// The outbox with the client's buffers inside (see StaticMqttClient).
template <size_t kTxBytes, size_t kRxBytes>
class StaticMqttOutbox : private mqtt::MqttBuffers<kTxBytes, kRxBytes>, public MqttOutbox {
  static_assert(kTxBytes >= 512 && kRxBytes >= 256, "buffers too small for the agent's packets");

 public:
  StaticMqttOutbox(mqtt::Transport& transport, uint8_t* offer_buffer, size_t offer_capacity)
      : mqtt::MqttBuffers<kTxBytes, kRxBytes>(),
        MqttOutbox(transport, this->tx, kTxBytes, this->rx, kRxBytes, offer_buffer,
                   offer_capacity) {}
};

}  // namespace tinyfleet::firmware
