// The agent core over the firmware's MQTT client (see mqtt_outbox.h).
#include "tinyfleet/firmware/mqtt_outbox.h"

#include <cstring>

#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/update/chunk_framing.h"

namespace tinyfleet::firmware {

using update::TopicKind;

MqttOutbox::MqttOutbox(mqtt::Transport& transport, uint8_t* tx, size_t tx_capacity, uint8_t* rx,
                       size_t rx_capacity, uint8_t* offer_buffer, size_t offer_capacity)
    : client_(transport, *this, tx, tx_capacity, rx, rx_capacity),
      transport_(transport),
      offer_(offer_buffer),
      offer_capacity_(offer_buffer ? offer_capacity : 0),
      rx_capacity_(rx_capacity) {}

bool MqttOutbox::configure(const char* fleet, const char* device) {
  prefix_size_ = 0;
  if (!update::device_topic_prefix(fleet, device, prefix_, sizeof prefix_).ok()) return false;
  prefix_size_ = std::strlen(prefix_);
  if (!topic(TopicKind::kPresence, will_topic_, sizeof will_topic_)) return false;
  presence_bytes(update::Presence::kOffline, will_);
  // A chunk answer: fixed header, topic (2 + length), packet id, framing header, data.
  const size_t header = mqtt::fixed_header_bytes(static_cast<uint32_t>(rx_capacity_)) + 2 +
                        prefix_size_ + std::strlen(update::to_string(TopicKind::kChunk)) + 2 +
                        update::kChunkHeaderBytes;
  max_chunk_ = rx_capacity_ > header ? static_cast<uint32_t>(rx_capacity_ - header) : 0;
  return max_chunk_ > 0;
}

void MqttOutbox::start(mqtt::ClientOptions& options) {
  options.connect.will_topic = will_topic_;
  options.connect.will_payload = will_;
  options.connect.will_payload_size = sizeof will_;
  options.connect.will_qos = 1;
  options.connect.will_retain = true;
  options.large_payloads = this;
  client_.start(options);
}

void MqttOutbox::poll() {
  client_.poll();
  // While an offer streams into the lent buffer the agent must not run (its poll may
  // reach the patch, which would use that buffer as its workspace).
  if (agent_ && !streaming_) agent_->poll();
}

void MqttOutbox::disconnect() {
  uint8_t offline[update::kPresenceBytes];
  presence_bytes(update::Presence::kOffline, offline);
  // The broker handles a connection's packets in order, so its acknowledgement of
  // "offline" says everything published before has arrived (QoS 0 telemetry too); closing
  // at once could lose the last packets with the link (a modem, or QEMU's socket, closing
  // with bytes in flight). Messages arriving meanwhile are not given to the agent.
  char t[update::kMaxTopicBytes];
  closing_ = true;
  closing_id_ = 0;
  closing_acked_ = false;
  if (topic(TopicKind::kPresence, t, sizeof t) &&
      client_.publish(t, offline, sizeof offline, 1, true, &closing_id_) == mqtt::MqttError::kOk) {
    const uint32_t since = transport_.now_ms();
    while (!closing_acked_ && client_.state() == mqtt::ClientState::kConnected &&
           transport_.now_ms() - since < kCloseWaitMs) {
      client_.poll();
    }
  }
  client_.disconnect();
  closing_ = false;
}

void MqttOutbox::on_puback(uint16_t packet_id) {
  if (closing_ && packet_id == closing_id_) closing_acked_ = true;
}

bool MqttOutbox::publish_status(const uint8_t* message, size_t size) {
  // Retained: a restarted server learns every device's last state at once.
  return publish(TopicKind::kStatus, message, size, 1, true);
}

bool MqttOutbox::publish_telemetry(const uint8_t* message, size_t size) {
  return publish(TopicKind::kTelemetry, message, size, 0, false);
}

bool MqttOutbox::request_chunk(uint64_t release, uint64_t offset, uint32_t length) {
  // The answer must fit the receive buffer: ask for less, the agent asks for the rest next.
  const update::ChunkRequest req{release, offset, length < max_chunk_ ? length : max_chunk_};
  uint8_t bytes[update::kChunkRequestBytes];
  if (req.length == 0 || !update::encode_chunk_request(req, bytes, sizeof bytes).ok()) {
    return false;
  }
  if (!publish(TopicKind::kChunkRequest, bytes, sizeof bytes, 0, false)) return false;
  ++counters_.chunk_requests;
  return true;
}

void MqttOutbox::on_connected(bool /*session_present*/) {
  // A clean session has no subscriptions: ask for both again on every connect.
  char t[update::kMaxTopicBytes];
  if (topic(TopicKind::kOffer, t, sizeof t)) client_.subscribe(t, 1, nullptr);
  if (topic(TopicKind::kChunk, t, sizeof t)) client_.subscribe(t, 1, nullptr);
  uint8_t online[update::kPresenceBytes];
  presence_bytes(update::Presence::kOnline, online);
  publish(TopicKind::kPresence, online, sizeof online, 1, true);
  // Announce what runs here and ask again for the chunk in flight.
  if (agent_) agent_->on_reconnect();
}

void MqttOutbox::on_message(const mqtt::Message& m) {
  if (closing_) {
    ++counters_.ignored;
    return;
  }
  if (agent_ && is_topic(m.topic, m.topic_size, TopicKind::kOffer)) {
    ++counters_.offers;
    // The agent checks an offer (a FlatBuffer) where it lies, which needs it aligned; in
    // the receive buffer it starts wherever the topic ended (UBSan: a misaligned read in
    // the verifier). So it goes through the offer buffer, like a streamed one.
    if (m.payload_size > 0 && m.payload_size <= offer_capacity_) {
      std::memcpy(offer_, m.payload, m.payload_size);
      agent_->on_offer(offer_, m.payload_size);
    } else {
      agent_->on_offer(m.payload, m.payload_size);  // empty: fleetd withdrew the offer
    }
    return;
  }
  update::Chunk chunk;
  if (agent_ && is_topic(m.topic, m.topic_size, TopicKind::kChunk) &&
      update::decode_chunk(m.payload, m.payload_size, &chunk).ok()) {
    ++counters_.chunks;
    agent_->on_chunk(chunk.release, chunk.offset, chunk.data, chunk.size);
    return;
  }
  ++counters_.ignored;
}

bool MqttOutbox::begin(const mqtt::Message& head) {
  // Only an offer may be larger than the receive buffer (chunks are asked to fit it).
  if (closing_ || !agent_ || !is_topic(head.topic, head.topic_size, TopicKind::kOffer) ||
      head.payload_size > offer_capacity_) {
    ++counters_.ignored;
    return false;
  }
  streaming_ = true;
  offer_size_ = 0;
  return true;
}

void MqttOutbox::piece(const uint8_t* data, size_t size) {
  if (!streaming_ || size > offer_capacity_ - offer_size_) return;  // the client bounds it
  std::memcpy(offer_ + offer_size_, data, size);
  offer_size_ += size;
}

void MqttOutbox::end() {
  if (!streaming_) return;
  streaming_ = false;
  ++counters_.offers;
  ++counters_.streamed_offers;
  agent_->on_offer(offer_, offer_size_);  // copied into the agent's own buffer if taken
}

bool MqttOutbox::publish(TopicKind kind, const uint8_t* data, size_t size, uint8_t qos,
                         bool retain) {
  char t[update::kMaxTopicBytes];
  return topic(kind, t, sizeof t) &&
         client_.publish(t, data, size, qos, retain, nullptr) == mqtt::MqttError::kOk;
}

bool MqttOutbox::topic(TopicKind kind, char* out, size_t capacity) const {
  const char* last = update::to_string(kind);
  const size_t n = std::strlen(last);
  if (prefix_size_ == 0 || prefix_size_ + n + 1 > capacity) return false;
  std::memcpy(out, prefix_, prefix_size_);
  std::memcpy(out + prefix_size_, last, n + 1);
  return true;
}

bool MqttOutbox::is_topic(const char* t, size_t size, TopicKind kind) const {
  const char* last = update::to_string(kind);
  const size_t n = std::strlen(last);
  return prefix_size_ > 0 && size == prefix_size_ + n &&
         std::memcmp(t, prefix_, prefix_size_) == 0 && std::memcmp(t + prefix_size_, last, n) == 0;
}

void MqttOutbox::presence_bytes(update::Presence p, uint8_t* out) const {
  size_t size = 0;
  update::encode_presence({p}, out, update::kPresenceBytes, &size);
}

}  // namespace tinyfleet::firmware
