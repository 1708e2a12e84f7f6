#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tinyfleet/device_agent/ports.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/update/topics.h"

namespace mqtt {
class async_client;
class iaction_listener;
class delivery_token;
}  // namespace mqtt

namespace tinyfleet::device_agent::linux_port {

// The device's MQTT side (Paho, MQTT 5, QoS 1) of the protocol in update/ (topics.h,
// chunk_framing.h): receives `offer` (retained) and `chunk`, sends `chunk/req`, `status`
// (retained), `telemetry` and `presence` (retained; "offline" is its will). Messages are
// queued by Paho's thread and handed to the agent by pump(), on the caller's thread.
//
// Each connection is a clean session, and the port itself keeps every telemetry window
// until the broker acknowledges it: one window in flight at a time, sent again on the next
// connection if its acknowledgement did not come, so none is lost or reordered. Paho 1.3's own
// retry of a persistent session's in-flight messages reads a topic it has freed when a publish met
// a dead socket (an ASan report on a broker node's SIGKILL), and nothing else needs the session:
// offers are retained, the agent asks again for the chunk in flight, and says hello (its state)
// after each reconnect.
class MqttAgentPort final : public Outbox {
 public:
  MqttAgentPort(std::string broker_uri, std::string fleet, std::string device,
                std::string password);
  ~MqttAgentPort() override;
  // With an ssl:// (or mqtts://) URI: the CA the broker's certificate must chain to, and
  // name the URI's host (the device pins it). Set before connect().
  void set_ca_file(std::string ca_file) { ca_file_ = std::move(ca_file); }
  // Other broker nodes (URIs) of a cluster, tried in turn after broker_uri when a
  // (re)connect fails, so a device whose node died comes back on another. Set before connect().
  void set_fallback_uris(std::vector<std::string> uris) { fallback_ = std::move(uris); }
  // MQTT 3.1.1 instead of MQTT 5: a nats-server MQTT listener speaks
  // only 3.1.1. Set before connect().
  void set_mqtt_v311(bool v311) { v311_ = v311; }
  // Called (on Paho's thread, outside the port's lock) whenever pump() has something to
  // deliver: a message, a reconnect, a telemetry window acknowledged. A process with many
  // ports (fleet-sim) sleeps until one of them wakes it. Set before connect().
  void set_wakeup(std::function<void()> wake) { wake_ = std::move(wake); }
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
  // Telemetry windows sent again on a later connection (their acknowledgement never came),
  // and those accepted and not yet acknowledged.
  uint64_t telemetry_resent() const;
  size_t telemetry_unacked() const;
  // Windows the port holds unacknowledged; publish_telemetry() refuses more (the caller
  // keeps them, as it does while the port is disconnected).
  static constexpr size_t kMaxUnackedWindows = 64;

 private:
  struct Message {
    std::string topic, payload;
  };
  // A telemetry window accepted and not yet acknowledged by the broker.
  struct Window {
    std::string bytes;
    uint64_t sent_on = 0;  // the connection (epoch) it was last sent on; 0: not yet sent
    std::chrono::steady_clock::time_point sent_at{};
    std::shared_ptr<mqtt::delivery_token> token;
  };
  bool publish(update::TopicKind kind, const uint8_t* data, size_t size, bool retained,
               int qos = 1);
  // Runs `change` under mu_ (Paho's thread: a message, a window acknowledged, a
  // reconnect), then wakes pump() and the process's loop (set_wakeup).
  void notify(const std::function<void()>& change);
  void subscribe_inbound();
  // Drops the acknowledged windows at the front; sends the oldest window left if it is not
  // in flight on the current connection (or failed there a second ago). The two below it do
  // the same under window_mu_, held.
  void flush_windows();
  static bool acknowledged(const Window& w);  // its PUBACK came
  void reap_acknowledged();
  void send_windows();

  std::string topic_[6];  // by update::TopicKind
  std::string device_, password_, uri_, ca_file_, tls_error_;
  std::vector<std::string> fallback_;
  bool v311_ = false;
  std::unique_ptr<mqtt::async_client> client_;
  UpdateAgent* agent_ = nullptr;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> wake_;  // set_wakeup()
  std::deque<Message> inbox_;
  uint64_t requests_ = 0;
  bool reconnected_ = false;
  // A subscription the broker refused (a nats-server cluster refuses them while it elects
  // new JetStream leaders after a node died): pump() subscribes again, once a second.
  void resubscribe_if_refused();
  // Paho's automatic reconnect can stop after a refused CONNECT (seen on a NATS cluster
  // whose node died: one attempt refused, none after). A session down for kStalled is
  // reconnected from here, at most once per kStalled.
  void reconnect_if_stalled();
  static constexpr std::chrono::seconds kStalled{15};
  bool started_ = false;
  std::chrono::steady_clock::time_point down_since_{};
  std::atomic<bool> refused_{false};
  std::chrono::steady_clock::time_point next_subscribe_{};
  std::unique_ptr<mqtt::iaction_listener> on_subscribe_;
  mutable std::mutex window_mu_;
  std::deque<Window> windows_;      // oldest first
  std::atomic<uint64_t> epoch_{0};  // connections made so far (the connected handler counts)
  std::unique_ptr<mqtt::iaction_listener> on_window_;  // sets window_done_ (under mu_)
  bool window_done_ = false;
  uint64_t resent_ = 0;
};

}  // namespace tinyfleet::device_agent::linux_port
