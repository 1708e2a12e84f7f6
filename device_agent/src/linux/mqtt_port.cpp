#include "tinyfleet/device_agent/linux/mqtt_port.h"

#include <mqtt/async_client.h>

#include <chrono>

namespace tinyfleet::device_agent::linux_port {

namespace {
void put_le(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t get_le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  return v;
}
}  // namespace

MqttAgentPort::MqttAgentPort(std::string broker_uri, std::string fleet, std::string device,
                             std::string password)
    : prefix_("tinyfleet/v1/" + fleet + "/" + device + "/"),
      device_(std::move(device)),
      password_(std::move(password)),
      uri_(std::move(broker_uri)) {}

MqttAgentPort::~MqttAgentPort() {
  if (client_ && client_->is_connected()) {
    try {
      client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  }
}

bool MqttAgentPort::connect(bool wait) {
  client_ =
      std::make_unique<mqtt::async_client>(uri_, device_, mqtt::create_options(MQTTVERSION_5));
  client_->set_message_callback([this](mqtt::const_message_ptr m) {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_.push_back({m->get_topic(), m->get_payload_str()});
    cv_.notify_one();
  });
  // After any (re)connect: subscribe again (a broker that lost the session has no
  // subscriptions for us) and let the agent ask again for the chunk in flight.
  client_->set_connected_handler([this](const std::string&) {
    try {
      client_->subscribe(prefix_ + "offer", 1);
      client_->subscribe(prefix_ + "chunk", 1);
    } catch (const mqtt::exception&) {
    }
    std::lock_guard<std::mutex> lock(mu_);
    reconnected_ = true;
    cv_.notify_one();
  });
  auto opts = mqtt::connect_options_builder()
                  .mqtt_version(MQTTVERSION_5)
                  .clean_start(false)
                  .properties({{mqtt::property::SESSION_EXPIRY_INTERVAL, 3600}})
                  .user_name(device_)
                  .password(password_)
                  .automatic_reconnect(std::chrono::milliseconds(200), std::chrono::seconds(2))
                  .connect_timeout(std::chrono::seconds(5))
                  .finalize();
  try {
    if (!wait) {
      // The connected handler subscribes once the session is up.
      client_->connect(opts);
      return true;
    }
    client_->connect(opts)->wait();
    client_->subscribe(prefix_ + "offer", 1)->wait();
    client_->subscribe(prefix_ + "chunk", 1)->wait();
  } catch (const mqtt::exception&) {
    return false;
  }
  return true;
}

bool MqttAgentPort::connected() const { return client_ && client_->is_connected(); }

int MqttAgentPort::pump(int wait_ms) {
  int delivered = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    Message m;
    bool reconnect = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_until(lock, until, [&] { return !inbox_.empty() || reconnected_; })) break;
      reconnect = reconnected_;
      reconnected_ = false;
      if (!inbox_.empty()) {
        m = std::move(inbox_.front());
        inbox_.pop_front();
      }
    }
    if (!agent_) continue;
    if (reconnect) agent_->on_reconnect();
    if (m.topic == prefix_ + "offer" && !m.payload.empty()) {
      agent_->on_offer(reinterpret_cast<const uint8_t*>(m.payload.data()), m.payload.size());
      ++delivered;
    } else if (m.topic == prefix_ + "chunk" && m.payload.size() >= 20 &&
               m.payload.compare(0, 4, "TFCK") == 0) {
      agent_->on_chunk(get_le(m.payload, 4, 8), get_le(m.payload, 12, 8),
                       reinterpret_cast<const uint8_t*>(m.payload.data()) + 20,
                       m.payload.size() - 20);
      ++delivered;
    }
    agent_->poll();
  }
  if (agent_) agent_->poll();
  return delivered;
}

bool MqttAgentPort::publish_status(const char* json) {
  if (!client_ || !client_->is_connected()) return false;
  try {
    // Retained: a restarted server learns every device's last state at once.
    client_->publish(prefix_ + "status", std::string(json), 1, true);
  } catch (const mqtt::exception&) {
    return false;
  }
  return true;
}

bool MqttAgentPort::publish_telemetry(const char* json) {
  if (!client_ || !client_->is_connected()) return false;
  try {
    client_->publish(prefix_ + "telemetry", std::string(json), 1, false);
  } catch (const mqtt::exception&) {
    return false;
  }
  return true;
}

bool MqttAgentPort::request_chunk(uint64_t release, uint64_t offset, uint32_t length) {
  std::string req = "TFCR";
  put_le(req, release, 8);
  put_le(req, offset, 8);
  put_le(req, length, 4);
  ++requests_;
  if (!client_ || !client_->is_connected()) return false;
  try {
    client_->publish(prefix_ + "chunk/req", req, 1, false);
  } catch (const mqtt::exception&) {
    return false;
  }
  return true;
}

}  // namespace tinyfleet::device_agent::linux_port
