#include "mqtt_options.h"

#include <atomic>
#include <chrono>

#include "tinyfleet/server/log.h"

namespace tinyfleet::server {

namespace {
std::atomic<bool> v311{false};
// Written once before any client connects (fleet_server.cpp), read by each connect.
mqtt::const_string_collection_ptr servers;
}  // namespace

void set_fleetd_mqtt_servers(std::vector<std::string> uris) {
  servers = uris.size() > 1 ? std::make_shared<mqtt::string_collection>(uris) : nullptr;
}

void set_fleetd_mqtt_v311(bool on) { v311 = on; }

int fleetd_mqtt_version() { return v311 ? MQTTVERSION_3_1_1 : MQTTVERSION_5; }

mqtt::connect_options fleetd_connect_options(const std::string& who, const std::string& user,
                                             const std::string& password,
                                             const std::string& ca_file, bool persistent_session) {
  mqtt::connect_options_builder builder;
  if (persistent_session) {
    builder.mqtt_version(MQTTVERSION_3_1_1).clean_session(false);
  } else if (v311) {
    builder.mqtt_version(MQTTVERSION_3_1_1).clean_session(true);
  } else {
    builder.mqtt_version(MQTTVERSION_5).clean_start(true);
  }
  builder.user_name(user)
      .password(password)
      .automatic_reconnect(std::chrono::milliseconds(200), std::chrono::seconds(2))
      .connect_timeout(std::chrono::seconds(5));
  if (servers) builder.servers(servers);
  if (!ca_file.empty()) {
    builder.ssl(mqtt::ssl_options_builder()
                    .trust_store(ca_file)
                    .enable_server_cert_auth(true)
                    .verify(true)
                    .error_handler([who](const std::string& message) {
                      log::warn(who + ".tls", {{"error", message}});
                    })
                    .finalize());
  }
  return builder.finalize();
}

}  // namespace tinyfleet::server
