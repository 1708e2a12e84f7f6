#include "tinyfleet/server/fleet_listener.h"

#include <mqtt/async_client.h>

#include <chrono>

#include "tinyfleet/server/log.h"

namespace tinyfleet::server {

namespace {
constexpr const char* kStatus = "tinyfleet/v1/+/+/status";

// tinyfleet/v1/{fleet}/{device}/{kind}
bool split(const std::string& topic, std::string* fleet, std::string* device, std::string* kind) {
  const std::string prefix = "tinyfleet/v1/";
  if (topic.compare(0, prefix.size(), prefix) != 0) return false;
  const size_t a = prefix.size(), b = topic.find('/', a), c = topic.find('/', b + 1);
  if (b == std::string::npos || c == std::string::npos) return false;
  *fleet = topic.substr(a, b - a);
  *device = topic.substr(b + 1, c - b - 1);
  *kind = topic.substr(c + 1);
  return true;
}
}  // namespace

FleetListener::FleetListener(std::string broker_uri, std::string user, std::string password,
                             std::string client_id, std::string share_group, Handler on_status,
                             Handler on_telemetry)
    : uri_(std::move(broker_uri)),
      user_(std::move(user)),
      password_(std::move(password)),
      client_id_(std::move(client_id)),
      telemetry_topic_("$share/" + share_group + "-telemetry/tinyfleet/v1/+/+/telemetry"),
      on_status_(std::move(on_status)),
      on_telemetry_(std::move(on_telemetry)) {}

FleetListener::~FleetListener() { stop(); }

bool FleetListener::start() {
  client_ =
      std::make_unique<mqtt::async_client>(uri_, client_id_, mqtt::create_options(MQTTVERSION_5));
  client_->set_message_callback([this](mqtt::const_message_ptr m) {
    std::string fleet, device, kind;
    if (!split(m->get_topic(), &fleet, &device, &kind) || m->get_payload().empty()) return;
    if (kind == "status" && on_status_) on_status_(fleet, device, m->get_payload_str());
    if (kind == "telemetry" && on_telemetry_) on_telemetry_(fleet, device, m->get_payload_str());
  });
  client_->set_connected_handler([this](const std::string&) {
    try {
      client_->subscribe(kStatus, 1);
      client_->subscribe(telemetry_topic_, 1);
    } catch (const mqtt::exception&) {
    }
  });
  auto opts = mqtt::connect_options_builder()
                  .mqtt_version(MQTTVERSION_5)
                  .clean_start(true)
                  .user_name(user_)
                  .password(password_)
                  .automatic_reconnect(std::chrono::milliseconds(200), std::chrono::seconds(2))
                  .connect_timeout(std::chrono::seconds(5))
                  .finalize();
  try {
    client_->connect(opts)->wait();
  } catch (const mqtt::exception& e) {
    log::error("listener.connect", {{"error", e.what()}});
    return false;
  }
  return true;
}

void FleetListener::stop() {
  if (client_ && client_->is_connected()) {
    try {
      client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  }
}

}  // namespace tinyfleet::server
