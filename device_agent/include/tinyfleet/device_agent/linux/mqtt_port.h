#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "tinyfleet/device_agent/ports.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/update/topics.h"

namespace mqtt {
class async_client;
}

namespace tinyfleet::device_agent::linux_port {

// The device's MQTT side (Paho, MQTT 5, QoS 1) of the protocol in update/ (topics.h,
// chunk_framing.h): receives `offer` (retained) and `chunk`, sends `chunk/req`, `status`
// (retained), `telemetry` and `presence` (retained; "offline" is its will). Messages are
// queued by Paho's thread and handed to the agent by pump(), on the caller's thread.
class MqttAgentPort final : public Outbox {
 public:
  MqttAgentPort(std::string broker_uri, std::string fleet, std::string device,
                std::string password);
  ~MqttAgentPort() override;
  // With an ssl:// (or mqtts://) URI: the CA the broker's certificate must chain to, and
  // name the URI's host (the device pins it). Set before connect().
  void set_ca_file(std::string ca_file) { ca_file_ = std::move(ca_file); }
  // The broker's last TLS error (OpenSSL's words), if any.
  std::string tls_error() const;
  // Connects (and subscribes); with wait=false it returns at once and the session comes
  // up in the background (many simulated devices connect in parallel).
  bool connect(bool wait = true);
  void attach(UpdateAgent* agent) { agent_ = agent; }
  // Delivers queued messages to the agent for up to `wait_ms`; returns how many.
  int pump(int wait_ms);

  bool publish_status(const uint8_t* message, size_t size) override;
  bool request_chunk(uint64_t release, uint64_t offset, uint32_t length) override;
  bool publish_telemetry(const uint8_t* message, size_t size) override;
  bool connected() const;
  uint64_t chunks_requested() const { return requests_; }

 private:
  struct Message {
    std::string topic, payload;
  };
  bool publish(update::TopicKind kind, const uint8_t* data, size_t size, bool retained);
  void subscribe_inbound();

  std::string topic_[6];  // by update::TopicKind
  std::string device_, password_, uri_, ca_file_, tls_error_;
  std::unique_ptr<mqtt::async_client> client_;
  UpdateAgent* agent_ = nullptr;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Message> inbox_;
  uint64_t requests_ = 0;
  bool reconnected_ = false;
};

}  // namespace tinyfleet::device_agent::linux_port
