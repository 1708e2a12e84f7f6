#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace mqtt {
class async_client;
}

namespace tinyfleet::server {

// fleetd's ear on the broker: every device's retained `status` (a plain subscription, so
// a restarted fleetd hears each device's last state at once) and `telemetry` through a
// shared subscription (replicas split the stream). Callbacks run on Paho's thread with
// the fleet and device taken from the topic (the broker's ACL vouches for them).
class FleetListener {
 public:
  using Handler = std::function<void(const std::string& fleet, const std::string& device,
                                     const std::string& payload)>;
  FleetListener(std::string broker_uri, std::string user, std::string password,
                std::string client_id, std::string share_group, Handler on_status,
                Handler on_telemetry);
  ~FleetListener();
  // Every device's `presence` (a plain subscription, like status). Set before start().
  void set_presence_handler(Handler on_presence) { on_presence_ = std::move(on_presence); }
  // With an ssl:// URI: the CA the broker's certificate must chain to (set before start()).
  void set_ca_file(std::string ca_file) { ca_file_ = std::move(ca_file); }
  // Resume the broker session `client_id` (MQTT 3.1.1, clean session off: the broker keeps
  // it while fleetd is away) instead of a fresh one: QoS 1 statuses and telemetry published
  // while fleetd was down are queued by the broker and delivered on reconnect. Paho
  // acknowledges (PUBACK) a QoS 1 message as it hands it to the callback, so what the
  // callback queued in memory is lost with the process; statuses are retained and come
  // again on every (re)subscription. Set before start().
  void set_persistent_session(std::string client_id) {
    client_id_ = std::move(client_id);
    persistent_ = true;
  }
  // Telemetry comes from elsewhere (a NATS queue group, broker.kind = nats) through
  // dispatch(), not from the shared subscription (set before start()).
  void set_telemetry_from_caller() { subscribe_telemetry_ = false; }
  bool start();
  void stop();
  // Subscribes to the status reports again, so the broker sends every device's retained
  // report once more (a replica that just became the rollout leader). Any thread; does
  // nothing before start() or while disconnected (the reconnect subscribes anyway).
  void resubscribe_statuses();
  // A device message on `topic` to its handler (status, telemetry or presence).
  void dispatch(const std::string& topic, const std::string& payload);

 private:
  bool subscribed();        // subscribes and waits until the broker granted each subscription
  void resubscribe_loop();  // after each reconnect, subscribed() again (its own thread)
  std::string ca_file_;
  std::string uri_, user_, password_, client_id_, status_topic_, telemetry_topic_, presence_topic_;
  bool persistent_ = false;
  bool subscribe_telemetry_ = true;
  std::atomic<bool> subscribed_{false};  // by start(); then the connected handler resubscribes
  Handler on_status_, on_telemetry_, on_presence_;
  std::unique_ptr<mqtt::async_client> client_;
  // A reconnect asks resubscribe_loop() to subscribe again: a nats-server cluster that
  // just lost a node refuses subscriptions (SUBACK 0x80) until its JetStream has a leader
  // again, and Paho's handler thread cannot wait for the broker's answers itself.
  std::mutex rs_mu_;
  std::condition_variable rs_cv_;
  bool rs_due_ = false, rs_stop_ = false;
  std::thread resubscriber_;
};

}  // namespace tinyfleet::server
