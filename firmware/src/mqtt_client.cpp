// The MQTT 3.1.1 client's connection state machine (see mqtt_client.h).
#include "tinyfleet/firmware/mqtt_client.h"

#include <cstring>

namespace tinyfleet::firmware::mqtt {

const char* to_string(LinkEvent event) {
  switch (event) {
    case LinkEvent::kClosedByClient:
      return "closed by the client";
    case LinkEvent::kTransportLost:
      return "transport lost";
    case LinkEvent::kConnackTimeout:
      return "no CONNACK in time";
    case LinkEvent::kPingTimeout:
      return "no PINGRESP within keep-alive";
    case LinkEvent::kRefused:
      return "connection refused";
    case LinkEvent::kProtocolError:
      return "malformed packet from the broker";
  }
  return "unknown";
}

MqttClient::MqttClient(Transport& transport, Handler& handler, uint8_t* tx, size_t tx_capacity,
                       uint8_t* rx, size_t rx_capacity)
    : transport_(transport),
      handler_(handler),
      tx_(tx),
      tx_capacity_(tx_capacity),
      rx_(rx),
      rx_capacity_(rx_capacity) {}

void MqttClient::start(const ClientOptions& options) {
  options_ = &options;
  backoff_ms_ = options.backoff_initial_ms;
  wait_ms_ = 0;  // the first CONNECT goes out on the next poll()
  state_ = ClientState::kBackoff;
  state_since_ = transport_.now_ms();
}

void MqttClient::poll() {
  if (state_ == ClientState::kStopped) return;
  const uint32_t now = transport_.now_ms();
  if (state_ == ClientState::kBackoff) {
    if (now - state_since_ >= wait_ms_) begin_connect(now);
    return;
  }
  receive(now);
  if (state_ == ClientState::kConnecting && now - state_since_ >= options_->connect_timeout_ms) {
    lose(LinkEvent::kConnackTimeout, now);
  }
  if (state_ == ClientState::kConnected) keep_alive(now);
  if (state_ == ClientState::kConnecting || state_ == ClientState::kConnected) flush(now);
}

void MqttClient::disconnect() {
  if (state_ == ClientState::kConnected) {
    size_t size = 0;
    if (queue(encode_disconnect(tx_ + tx_size_, tx_capacity_ - tx_size_, &size), size)) {
      flush(transport_.now_ms());
    }
  }
  if (state_ == ClientState::kConnecting || state_ == ClientState::kConnected) {
    lose(LinkEvent::kClosedByClient, transport_.now_ms());
  }
  state_ = ClientState::kStopped;  // also when a failed flush left it in back-off
}

MqttError MqttClient::subscribe(const char* filter, uint8_t qos, uint16_t* packet_id) {
  if (state_ != ClientState::kConnected) return MqttError::kNotConnected;
  const uint16_t id = next_id();
  size_t size = 0;
  const MqttError e =
      encode_subscribe(id, filter, qos, tx_ + tx_size_, tx_capacity_ - tx_size_, &size);
  if (!queue(e, size)) return e;
  if (packet_id) *packet_id = id;
  flush(transport_.now_ms());
  return MqttError::kOk;
}

MqttError MqttClient::publish(const char* topic, const uint8_t* payload, size_t payload_size,
                              uint8_t qos, bool retain, uint16_t* packet_id) {
  if (state_ != ClientState::kConnected) return MqttError::kNotConnected;
  const uint16_t id = qos > 0 ? next_id() : 0;
  size_t size = 0;
  const MqttError e = encode_publish(topic, payload, payload_size, qos, retain, false, id,
                                     tx_ + tx_size_, tx_capacity_ - tx_size_, &size);
  if (!queue(e, size)) return e;
  ++counters_.published;
  if (packet_id) *packet_id = id;
  flush(transport_.now_ms());
  return MqttError::kOk;
}

void MqttClient::begin_connect(uint32_t now) {
  ++counters_.attempts;
  tx_size_ = rx_size_ = skip_ = stream_ = 0;
  ping_outstanding_ = false;
  if (!transport_.open()) {
    lose(LinkEvent::kTransportLost, now);
    return;
  }
  size_t size = 0;
  if (!queue(encode_connect(options_->connect, tx_, tx_capacity_, &size), size)) {
    lose(LinkEvent::kTransportLost, now);  // CONNECT does not fit: a configuration error
    return;
  }
  state_ = ClientState::kConnecting;
  state_since_ = now;
  flush(now);
}

void MqttClient::lose(LinkEvent why, uint32_t now) {
  transport_.close();
  tx_size_ = rx_size_ = skip_ = stream_ = 0;
  ping_outstanding_ = false;
  if (why == LinkEvent::kClosedByClient) {
    state_ = ClientState::kStopped;
  } else {
    state_ = ClientState::kBackoff;
    state_since_ = now;
    wait_ms_ = backoff_ms_;
    backoff_ms_ =
        backoff_ms_ > options_->backoff_max_ms / 2 ? options_->backoff_max_ms : backoff_ms_ * 2;
  }
  handler_.on_disconnected(why);
}

bool MqttClient::queue(MqttError encoded, const size_t& size) {
  if (encoded != MqttError::kOk) return false;
  tx_size_ += size;
  return true;
}

void MqttClient::flush(uint32_t now) {
  while (tx_size_ > 0) {
    const int n = transport_.write(tx_, tx_size_);
    if (n < 0) {
      lose(LinkEvent::kTransportLost, now);
      return;
    }
    if (n == 0) return;
    const size_t sent = static_cast<size_t>(n) < tx_size_ ? static_cast<size_t>(n) : tx_size_;
    std::memmove(tx_, tx_ + sent, tx_size_ - sent);
    tx_size_ -= sent;
    last_sent_ = now;
  }
}

void MqttClient::receive(uint32_t now) {
  // A bounded number of reads per poll, so a busy link cannot starve the main loop.
  for (int reads = 0; reads < 8; ++reads) {
    const ClientState before = state_;
    if (stream_ > 0) {  // the rest of a large payload: to the sink, piece by piece
      const size_t want = stream_ < rx_capacity_ ? stream_ : rx_capacity_;
      const int n = transport_.read(rx_, want);
      if (n < 0) return lose(LinkEvent::kTransportLost, now);
      if (n == 0) return;
      stream_ -= static_cast<size_t>(n);
      options_->large_payloads->piece(rx_, static_cast<size_t>(n));
      if (stream_ == 0) end_stream(now);
      if (state_ != before) return;
      continue;
    }
    if (skip_ > 0) {  // the rest of an oversized packet: read and drop
      const size_t want = skip_ < rx_capacity_ ? skip_ : rx_capacity_;
      const int n = transport_.read(rx_, want);
      if (n < 0) return lose(LinkEvent::kTransportLost, now);
      if (n == 0) return;
      skip_ -= static_cast<size_t>(n);
      continue;
    }
    const int n = transport_.read(rx_ + rx_size_, rx_capacity_ - rx_size_);
    if (n < 0) return lose(LinkEvent::kTransportLost, now);
    rx_size_ += static_cast<size_t>(n);
    for (;;) {
      size_t length = 0;
      const MqttError framed = frame_length(rx_, rx_size_, rx_capacity_, &length);
      if (framed == MqttError::kIncomplete || (framed == MqttError::kOk && length > rx_size_)) {
        break;
      }
      if (framed == MqttError::kPacketTooLarge) {
        if (stream_large(length, now)) {  // its head still coming, or taken by the sink
          if (state_ != ClientState::kConnected) return;
          break;
        }
        skip_ = length - rx_size_;
        rx_size_ = 0;
        ++counters_.dropped;
        handler_.on_dropped(length);
        break;
      }
      Packet packet;
      const MqttError parsed =
          framed == MqttError::kOk ? parse_packet(rx_, length, &packet) : framed;
      if (parsed != MqttError::kOk) {
        last_error_ = parsed;
        return lose(LinkEvent::kProtocolError, now);
      }
      handle(packet, now);
      if (state_ != ClientState::kConnecting && state_ != ClientState::kConnected) return;
      std::memmove(rx_, rx_ + length, rx_size_ - length);
      rx_size_ -= length;
    }
    if (n == 0 || state_ != before) return;
  }
}

void MqttClient::handle(const Packet& p, uint32_t now) {
  if (state_ == ClientState::kConnecting) {
    if (p.type != PacketType::kConnack) {  // the broker's first packet must be CONNACK
      last_error_ = MqttError::kUnexpectedPacket;
      return lose(LinkEvent::kProtocolError, now);
    }
    if (p.return_code != 0) {
      handler_.on_refused(static_cast<ConnectReturn>(p.return_code));
      return lose(LinkEvent::kRefused, now);
    }
    state_ = ClientState::kConnected;
    state_since_ = now;
    backoff_ms_ = options_->backoff_initial_ms;
    ++counters_.connects;
    handler_.on_connected(p.session_present);
    return;
  }
  switch (p.type) {
    case PacketType::kPublish: {
      ++counters_.received;
      handler_.on_message({p.topic, p.topic_size, p.payload, p.payload_size, p.qos, p.retain});
      if (p.qos == 1) acknowledge(p.packet_id, now);
      return;
    }
    case PacketType::kPuback:
      handler_.on_puback(p.packet_id);
      return;
    case PacketType::kSuback:
      handler_.on_suback(p.packet_id, p.suback_code);
      return;
    case PacketType::kPingresp:
      ping_outstanding_ = false;
      ++counters_.pongs;
      return;
    case PacketType::kConnack:  // a second CONNACK is a protocol violation
      last_error_ = MqttError::kUnexpectedPacket;
      return lose(LinkEvent::kProtocolError, now);
    default:
      return;  // UNSUBACK: this client never unsubscribes
  }
}

void MqttClient::acknowledge(uint16_t packet_id, uint32_t now) {
  size_t size = 0;
  if (queue(encode_puback(packet_id, tx_ + tx_size_, tx_capacity_ - tx_size_, &size), size)) {
    return;
  }
  flush(now);  // make room, then try once more
  if (state_ == ClientState::kConnected &&
      !queue(encode_puback(packet_id, tx_ + tx_size_, tx_capacity_ - tx_size_, &size), size)) {
    last_error_ = MqttError::kBufferTooSmall;
    lose(LinkEvent::kTransportLost, now);
  }
}

bool MqttClient::stream_large(size_t length, uint32_t now) {
  PayloadSink* sink = options_->large_payloads;
  if (!sink || state_ != ClientState::kConnected) return false;
  Packet head;
  size_t head_bytes = 0;
  const MqttError e = parse_publish_head(rx_, rx_size_, length, &head, &head_bytes);
  // Its head still coming: wait for it (a head over the whole buffer is skipped).
  if (e == MqttError::kIncomplete) return rx_size_ < rx_capacity_;
  if (e == MqttError::kUnexpectedPacket) return false;  // not a PUBLISH: skipped
  if (e != MqttError::kOk) {
    last_error_ = e;
    lose(LinkEvent::kProtocolError, now);
    return true;
  }
  if (!sink->begin(
          {head.topic, head.topic_size, nullptr, head.payload_size, head.qos, head.retain})) {
    return false;
  }
  if (rx_size_ > head_bytes) sink->piece(rx_ + head_bytes, rx_size_ - head_bytes);
  stream_ = length - rx_size_;  // > 0: the packet is larger than the buffer
  stream_id_ = head.qos == 1 ? head.packet_id : 0;
  rx_size_ = 0;
  return true;
}

void MqttClient::end_stream(uint32_t now) {
  ++counters_.received;
  options_->large_payloads->end();
  if (stream_id_ != 0 && state_ == ClientState::kConnected) acknowledge(stream_id_, now);
}

void MqttClient::keep_alive(uint32_t now) {
  const uint32_t period = uint32_t{options_->connect.keep_alive_s} * 1000u;
  if (period == 0) return;
  if (ping_outstanding_) {
    if (now - ping_sent_at_ >= period) lose(LinkEvent::kPingTimeout, now);
    return;
  }
  // Ping at 3/4 of the period of silence, so a late poll() stays within keep-alive.
  if (now - last_sent_ >= period / 4 * 3) {
    size_t size = 0;
    if (queue(encode_pingreq(tx_ + tx_size_, tx_capacity_ - tx_size_, &size), size)) {
      ping_outstanding_ = true;
      ping_sent_at_ = now;
      ++counters_.pings_sent;
    }
  }
}

uint16_t MqttClient::next_id() {
  if (++last_id_ == 0) last_id_ = 1;
  return last_id_;
}

}  // namespace tinyfleet::firmware::mqtt
