#include "tinyfleet/server/fleet_listener.h"

#include <mqtt/async_client.h>

#include <chrono>
#include <thread>
#include <vector>

#include "mqtt_options.h"
#include "tinyfleet/server/log.h"
#include "tinyfleet/update/topics.h"

namespace tinyfleet::server {

namespace {
std::string filter(update::TopicKind kind) {
  char out[update::kMaxTopicBytes];
  update::topic_filter(nullptr, kind, out, sizeof out);
  return out;
}
}  // namespace

FleetListener::FleetListener(std::string broker_uri, std::string user, std::string password,
                             std::string client_id, std::string share_group, Handler on_status,
                             Handler on_telemetry)
    : uri_(std::move(broker_uri)),
      user_(std::move(user)),
      password_(std::move(password)),
      client_id_(std::move(client_id)),
      status_topic_(filter(update::TopicKind::kStatus)),
      // No share group: a plain subscription (one fleetd), which Mosquitto keeps in a
      // persistent session across its own restarts; it persists no shared subscription.
      telemetry_topic_(share_group.empty() ? filter(update::TopicKind::kTelemetry)
                                           : "$share/" + share_group + "-telemetry/" +
                                                 filter(update::TopicKind::kTelemetry)),
      presence_topic_(filter(update::TopicKind::kPresence)),
      on_status_(std::move(on_status)),
      on_telemetry_(std::move(on_telemetry)) {}

FleetListener::~FleetListener() { stop(); }

bool FleetListener::start() {
  // A persistent session is MQTT 3.1.1 with clean session off (the broker keeps it until
  // its persistent_client_expiration); a fresh one is MQTT 5 with clean start.
  const int version = persistent_ ? MQTTVERSION_3_1_1 : fleetd_mqtt_version();
  client_ = std::make_unique<mqtt::async_client>(uri_, client_id_, mqtt::create_options(version));
  client_->set_message_callback([this](mqtt::const_message_ptr m) {
    // Nothing a device sends may leave Paho's thread as an exception (std::terminate):
    // the handlers parse into typed values and count what does not parse; this catch is
    // for what they cannot rule out (memory).
    try {
      dispatch(m->get_topic(), m->get_payload_str());
    } catch (const std::exception& e) {
      log::error("listener.message", {{"topic", m->get_topic()}, {"error", e.what()}});
    }
  });
  client_->set_connected_handler([this](const std::string&) {
    if (!subscribed_) return;  // the first connection: start() subscribes and checks
    std::lock_guard<std::mutex> lock(rs_mu_);
    rs_due_ = true;
    rs_cv_.notify_one();
  });
  const auto opts = fleetd_connect_options("listener", user_, password_, ca_file_, persistent_);
  try {
    client_->connect(opts)->wait();
  } catch (const mqtt::exception& e) {
    log::error("listener.connect", {{"error", e.what()}});
    return false;
  }
  subscribed_ = subscribed();
  if (subscribed_) resubscriber_ = std::thread([this] { resubscribe_loop(); });
  return subscribed_;
}

void FleetListener::resubscribe_loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(rs_mu_);
      rs_cv_.wait(lock, [this] { return rs_due_ || rs_stop_; });
      if (rs_stop_) return;
      rs_due_ = false;
    }
    if (subscribed()) log::info("listener.resubscribed", {});
  }
}

bool FleetListener::subscribed() {
  // A nats-server cluster refuses subscriptions (SUBACK 0x80) while its JetStream is not
  // ready (at start, or after losing a node), so each is made again until granted, for up
  // to a minute (at start, and from resubscribe_loop() after a reconnect).
  std::vector<std::string> topics = {status_topic_};
  if (subscribe_telemetry_) topics.push_back(telemetry_topic_);
  if (on_presence_) topics.push_back(presence_topic_);
  for (const auto& topic : topics) {
    for (int attempt = 1;; ++attempt) {
      try {
        client_->subscribe(topic, 1)->wait();
        break;
      } catch (const mqtt::exception& e) {
        if (attempt >= 60) {
          log::error("listener.subscribe", {{"topic", topic}, {"error", e.what()}});
          return false;
        }
        log::warn("listener.subscribe_retry", {{"topic", topic}, {"error", e.what()}});
        std::unique_lock<std::mutex> lock(rs_mu_);
        if (rs_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return rs_stop_; })) {
          return false;
        }
      }
    }
  }
  return true;
}

void FleetListener::resubscribe_statuses() {
  if (!client_ || !client_->is_connected()) return;
  try {
    client_->subscribe(status_topic_, 1);
  } catch (const mqtt::exception& e) {
    log::warn("listener.resubscribe", {{"error", e.what()}});
  }
}

void FleetListener::dispatch(const std::string& topic, const std::string& payload) {
  update::TopicName name;
  if (!update::parse_topic(topic.data(), topic.size(), &name).ok() || payload.empty()) return;
  const std::string fleet(name.fleet, name.fleet_size), device(name.device, name.device_size);
  if (name.kind == update::TopicKind::kStatus && on_status_) on_status_(fleet, device, payload);
  if (name.kind == update::TopicKind::kPresence && on_presence_) {
    on_presence_(fleet, device, payload);
  }
  if (name.kind == update::TopicKind::kTelemetry && on_telemetry_) {
    on_telemetry_(fleet, device, payload);
  }
}

void FleetListener::stop() {
  {
    std::lock_guard<std::mutex> lock(rs_mu_);
    rs_stop_ = true;
    rs_cv_.notify_all();
  }
  if (resubscriber_.joinable()) resubscriber_.join();
  if (client_ && client_->is_connected()) {
    try {
      client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  }
}

}  // namespace tinyfleet::server
