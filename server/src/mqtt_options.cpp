#include "mqtt_options.h"

#include <chrono>

#include "tinyfleet/server/log.h"

namespace tinyfleet::server {

mqtt::connect_options fleetd_connect_options(const std::string& who, const std::string& user,
                                             const std::string& password,
                                             const std::string& ca_file, bool persistent_session) {
  mqtt::connect_options_builder builder;
  if (persistent_session) {
    builder.mqtt_version(MQTTVERSION_3_1_1).clean_session(false);
  } else {
    builder.mqtt_version(MQTTVERSION_5).clean_start(true);
  }
  builder.user_name(user)
      .password(password)
      .automatic_reconnect(std::chrono::milliseconds(200), std::chrono::seconds(2))
      .connect_timeout(std::chrono::seconds(5));
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
