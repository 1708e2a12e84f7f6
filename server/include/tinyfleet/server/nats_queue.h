#pragma once

// fleetd's subscription to device messages through NATS (broker.kind = nats): on a
// nats-server cluster the MQTT listener has no `$share` shared subscriptions, but every
// MQTT publish is also a NATS message on the mapped subject (nats_subject.h). Replicas
// subscribe to those subjects in one queue group, so each device message goes to one
// replica of the group. libnats reconnects to another server of the list when its node
// dies and restores the subscriptions.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tinyfleet::server {

struct NatsQueueOptions {
  std::string servers;  // comma-separated nats:// (or tls://) URLs of the cluster's nodes
  std::string user, password;
  std::string ca_file;  // set: TLS, the servers' certificates checked against this CA
  std::string queue_group;
  std::string name;  // the connection's name in the servers' monitoring
};

class NatsQueue {
 public:
  // `topic`: the MQTT topic the device published on (mapped back from the subject).
  using Handler = std::function<void(const std::string& topic, const std::string& payload)>;
  NatsQueue(NatsQueueOptions options, Handler handler);
  ~NatsQueue();
  NatsQueue(const NatsQueue&) = delete;
  NatsQueue& operator=(const NatsQueue&) = delete;

  // Connects (retrying in the background if no server answers yet) and subscribes to
  // each MQTT filter as a subject in the queue group. False, with the reason logged, if
  // the options are unusable.
  bool start(const std::vector<std::string>& mqtt_filters);
  void stop();

  // Messages handed to the handler, and messages dropped (a subject that maps to no
  // topic, or a message that did not come from the MQTT listener).
  uint64_t delivered() const { return delivered_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t reconnects() const { return reconnects_; }

 private:
  struct Impl;
  void on_message(const char* subject, const char* data, int size, bool from_mqtt);

  NatsQueueOptions options_;
  Handler handler_;
  std::unique_ptr<Impl> impl_;
  std::atomic<uint64_t> delivered_{0}, dropped_{0}, reconnects_{0};
};

}  // namespace tinyfleet::server
