#include "tinyfleet/device_agent/linux/mqtt_port.h"

#include <mqtt/async_client.h>

#include <chrono>
#include <functional>
#include <thread>

#include "tinyfleet/update/chunk_framing.h"
#include "tinyfleet/update/presence_message.h"

namespace tinyfleet::device_agent::linux_port {

namespace {
using update::TopicKind;

// Raises `refused` when a SUBSCRIBE fails or its SUBACK refuses the filter (0x80).
class RefusalFlag final : public mqtt::iaction_listener {
 public:
  explicit RefusalFlag(std::atomic<bool>* refused) : refused_(refused) {}
  void on_failure(const mqtt::token&) override { *refused_ = true; }
  void on_success(const mqtt::token& tok) override {
    if (tok.get_reason_code() > mqtt::ReasonCode::GRANTED_QOS_2) *refused_ = true;
  }

 private:
  std::atomic<bool>* refused_;
};

// Wakes pump() when the broker acknowledges (or Paho fails) a telemetry window, so the next
// one goes at once.
class WindowDone final : public mqtt::iaction_listener {
 public:
  explicit WindowDone(std::function<void()> wake) : wake_(std::move(wake)) {}
  void on_failure(const mqtt::token&) override { wake_(); }
  void on_success(const mqtt::token&) override { wake_(); }

 private:
  std::function<void()> wake_;
};

std::string presence_bytes(update::Presence p) {
  uint8_t out[update::kPresenceBytes];
  size_t size = 0;
  update::encode_presence({p}, out, sizeof out, &size);
  return std::string(reinterpret_cast<const char*>(out), size);
}
}  // namespace

MqttAgentPort::MqttAgentPort(std::string broker_uri, std::string fleet, std::string device,
                             std::string password)
    : device_(std::move(device)), password_(std::move(password)), uri_(std::move(broker_uri)) {
  for (TopicKind kind : {TopicKind::kOffer, TopicKind::kChunk, TopicKind::kChunkRequest,
                         TopicKind::kStatus, TopicKind::kTelemetry, TopicKind::kPresence}) {
    char topic[update::kMaxTopicBytes];
    // An id the topic cannot carry leaves the topic empty: nothing is sent or received.
    if (update::device_topic(fleet.c_str(), device_.c_str(), kind, topic, sizeof topic).ok()) {
      topic_[static_cast<size_t>(kind)] = topic;
    }
  }
}

MqttAgentPort::~MqttAgentPort() {
  if (client_ && client_->is_connected()) {
    // Windows on their way get two seconds to be acknowledged.
    for (int i = 0; i < 200 && telemetry_unacked() > 0; ++i) {
      flush_windows();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    try {
      // A clean disconnect sends no will: say "offline" ourselves.
      const std::string offline = presence_bytes(update::Presence::kOffline);
      client_->publish(topic_[static_cast<size_t>(TopicKind::kPresence)], offline, 1, true)
          ->wait_for(std::chrono::seconds(2));
      client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  }
}

void MqttAgentPort::subscribe_inbound() {
  client_->subscribe(topic_[static_cast<size_t>(TopicKind::kOffer)], 1)->wait();
  client_->subscribe(topic_[static_cast<size_t>(TopicKind::kChunk)], 1)->wait();
}

void MqttAgentPort::notify(const std::function<void()>& change) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    change();
    cv_.notify_one();
  }
  if (wake_) wake_();
}

bool MqttAgentPort::connect(bool wait) {
  const int version = v311_ ? MQTTVERSION_3_1_1 : MQTTVERSION_5;
  client_ = std::make_unique<mqtt::async_client>(uri_, device_, mqtt::create_options(version));
  client_->set_message_callback([this](mqtt::const_message_ptr m) {
    notify([&] { inbox_.push_back({m->get_topic(), m->get_payload_str()}); });
  });
  // After any (re)connect: subscribe again (a broker that lost the session has no
  // subscriptions for us), say we are online, and let the agent ask again for the chunk
  // in flight.
  if (!on_subscribe_) on_subscribe_ = std::make_unique<RefusalFlag>(&refused_);
  if (!on_window_) {
    on_window_ = std::make_unique<WindowDone>([this] { notify([this] { window_done_ = true; }); });
  }
  client_->set_connected_handler([this](const std::string&) {
    try {
      client_->subscribe(topic_[static_cast<size_t>(TopicKind::kOffer)], 1, nullptr,
                         *on_subscribe_);
      client_->subscribe(topic_[static_cast<size_t>(TopicKind::kChunk)], 1, nullptr,
                         *on_subscribe_);
      const std::string online = presence_bytes(update::Presence::kOnline);
      client_->publish(topic_[static_cast<size_t>(TopicKind::kPresence)], online, 1, true);
    } catch (const mqtt::exception&) {
    }
    // A clean session: what the last connection left unacknowledged goes again, before
    // any new window, on the caller's thread (pump(), publish_telemetry()). Not here: this
    // runs under Paho's lock, which a publish on the caller's thread takes.
    ++epoch_;
    notify([this] { reconnected_ = true; });
  });
  // The broker publishes "offline" (retained) when the session ends uncleanly.
  mqtt::will_options will(topic_[static_cast<size_t>(TopicKind::kPresence)],
                          presence_bytes(update::Presence::kOffline), 1, true);
  auto builder = mqtt::connect_options_builder();
  // A clean session each time (the class comment says why).
  if (v311_) {
    builder.mqtt_version(MQTTVERSION_3_1_1).clean_session(true);
  } else {
    builder.mqtt_version(MQTTVERSION_5).clean_start(true);
  }
  if (!fallback_.empty()) {
    auto servers = std::make_shared<mqtt::string_collection>(uri_);
    for (const auto& uri : fallback_) servers->push_back(uri);
    builder.servers(servers);
  }
  builder.user_name(device_)
      .password(password_)
      .will(std::move(will))
      .automatic_reconnect(std::chrono::milliseconds(200), std::chrono::seconds(2))
      .connect_timeout(std::chrono::seconds(5));
  if (!ca_file_.empty()) {
    builder.ssl(mqtt::ssl_options_builder()
                    .trust_store(ca_file_)
                    .enable_server_cert_auth(true)
                    .verify(true)
                    .error_handler([this](const std::string& message) {
                      std::lock_guard<std::mutex> lock(mu_);
                      tls_error_ = message;
                    })
                    .finalize());
  }
  const auto opts = builder.finalize();
  started_ = true;
  try {
    if (!wait) {
      // The connected handler subscribes once the session is up.
      client_->connect(opts);
      return true;
    }
    client_->connect(opts)->wait();
    subscribe_inbound();
  } catch (const mqtt::exception&) {
    return false;
  }
  return true;
}

std::string MqttAgentPort::tls_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tls_error_;
}

bool MqttAgentPort::connected() const { return client_ && client_->is_connected(); }

void MqttAgentPort::reconnect_if_stalled() {
  if (!started_) return;
  const auto now = std::chrono::steady_clock::now();
  if (connected()) {
    down_since_ = {};
    return;
  }
  if (down_since_ == std::chrono::steady_clock::time_point{}) {
    down_since_ = now;
    return;
  }
  if (now - down_since_ < kStalled) return;
  down_since_ = now;
  try {
    client_->reconnect();  // now, when Paho is still retrying
  } catch (const mqtt::exception&) {
    connect(/*wait=*/false);  // Paho gave up: a new connect
  }
}

void MqttAgentPort::resubscribe_if_refused() {
  const auto now = std::chrono::steady_clock::now();
  if (!refused_ || now < next_subscribe_ || !connected()) return;
  refused_ = false;
  next_subscribe_ = now + std::chrono::seconds(1);
  try {
    client_->subscribe(topic_[static_cast<size_t>(TopicKind::kOffer)], 1, nullptr, *on_subscribe_);
    client_->subscribe(topic_[static_cast<size_t>(TopicKind::kChunk)], 1, nullptr, *on_subscribe_);
  } catch (const mqtt::exception&) {
    refused_ = true;
  }
}

int MqttAgentPort::pump(int wait_ms) {
  reconnect_if_stalled();
  resubscribe_if_refused();
  flush_windows();
  int delivered = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    Message m;
    bool reconnect = false, got = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_until(lock, until,
                          [&] { return !inbox_.empty() || reconnected_ || window_done_; })) {
        break;
      }
      reconnect = reconnected_;
      reconnected_ = false;
      window_done_ = false;
      if (!inbox_.empty()) {
        m = std::move(inbox_.front());
        inbox_.pop_front();
        got = true;
      }
    }
    flush_windows();
    if (!agent_) continue;
    if (reconnect) agent_->on_reconnect();
    const auto* bytes = reinterpret_cast<const uint8_t*>(m.payload.data());
    update::Chunk chunk;
    if (got && m.topic == topic_[static_cast<size_t>(TopicKind::kOffer)]) {
      // Empty: fleetd withdrew the offer (a cleared retained message); the agent abandons
      // an update of it in flight (UpdateAgent::on_offer), as over the firmware's outbox.
      agent_->on_offer(bytes, m.payload.size());
      ++delivered;
    } else if (got && m.topic == topic_[static_cast<size_t>(TopicKind::kChunk)] &&
               update::decode_chunk(bytes, m.payload.size(), &chunk).ok()) {
      agent_->on_chunk(chunk.release, chunk.offset, chunk.data, chunk.size);
      ++delivered;
    }
    agent_->poll();
  }
  if (agent_) agent_->poll();
  return delivered;
}

bool MqttAgentPort::publish(TopicKind kind, const uint8_t* data, size_t size, bool retained,
                            int qos) {
  const std::string& topic = topic_[static_cast<size_t>(kind)];
  if (topic.empty() || !client_ || !client_->is_connected()) return false;
  try {
    client_->publish(topic, data, size, qos, retained);
  } catch (const mqtt::exception&) {
    return false;
  }
  return true;
}

bool MqttAgentPort::publish_status(const uint8_t* message, size_t size) {
  // Retained: a restarted server learns every device's last state at once.
  return publish(TopicKind::kStatus, message, size, true);
}

bool MqttAgentPort::publish_telemetry(const uint8_t* message, size_t size) {
  if (topic_[static_cast<size_t>(TopicKind::kTelemetry)].empty() || !connected()) return false;
  std::lock_guard<std::mutex> lock(window_mu_);
  reap_acknowledged();
  if (windows_.size() >= kMaxUnackedWindows) return false;
  windows_.emplace_back();
  windows_.back().bytes.assign(reinterpret_cast<const char*>(message), size);
  send_windows();
  return true;
}

bool MqttAgentPort::acknowledged(const Window& w) {
  return w.token && w.token->is_complete() && w.token->get_return_code() == MQTTASYNC_SUCCESS;
}

void MqttAgentPort::reap_acknowledged() {
  while (!windows_.empty() && acknowledged(windows_.front())) windows_.pop_front();
}

void MqttAgentPort::flush_windows() {
  std::lock_guard<std::mutex> lock(window_mu_);
  reap_acknowledged();
  send_windows();
}

void MqttAgentPort::send_windows() {
  const uint64_t epoch = epoch_;
  if (windows_.empty() || epoch == 0 || !client_ || !client_->is_connected()) return;
  // One window in flight: the next goes once this one is acknowledged, so a window sent
  // again never arrives after a later one (Paho may still send a publish it queued before
  // the connection dropped).
  Window& w = windows_.front();
  const auto now = std::chrono::steady_clock::now();
  if (w.sent_on == epoch) {
    const bool failed = w.token && w.token->is_complete();  // acknowledged ones are reaped
    if (!failed || now - w.sent_at < std::chrono::seconds(1)) return;
  }
  try {
    w.token = client_->publish(topic_[static_cast<size_t>(TopicKind::kTelemetry)], w.bytes.data(),
                               w.bytes.size(), 1, false, nullptr, *on_window_);
  } catch (const mqtt::exception&) {
    return;  // disconnected: the next connection sends it
  }
  if (w.sent_on != 0) ++resent_;
  w.sent_on = epoch;
  w.sent_at = now;
}

uint64_t MqttAgentPort::telemetry_resent() const {
  std::lock_guard<std::mutex> lock(window_mu_);
  return resent_;
}

size_t MqttAgentPort::telemetry_unacked() const {
  std::lock_guard<std::mutex> lock(window_mu_);
  size_t n = 0;
  for (const Window& w : windows_) n += acknowledged(w) ? 0 : 1;
  return n;
}

bool MqttAgentPort::request_chunk(uint64_t release, uint64_t offset, uint32_t length) {
  uint8_t req[update::kChunkRequestBytes];
  ++requests_;
  if (!update::encode_chunk_request({release, offset, length}, req, sizeof req).ok()) return false;
  // QoS 0, as the firmware's: a request or its answer lost is asked for again after the
  // agent's chunk timeout, so a PUBACK would only add a packet each way.
  return publish(TopicKind::kChunkRequest, req, sizeof req, false, /*qos=*/0);
}

}  // namespace tinyfleet::device_agent::linux_port
