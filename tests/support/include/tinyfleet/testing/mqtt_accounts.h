// Test helper: MQTT connect options for the local stack's server account (the account
// fleetd uses; it may read every device topic). Header-only: tests that include it link
// Paho MQTT C++ already.
#pragma once

#include <mqtt/async_client.h>

#include "tinyfleet/testing/environment.h"

namespace tinyfleet::testing {

// With `tls`, for tls_broker_uri(): the broker's certificate checked against the stack CA.
inline mqtt::connect_options server_account_options(bool tls = false) {
  auto builder = mqtt::connect_options_builder()
                     .mqtt_version(MQTTVERSION_5)
                     .user_name(require_env("TINYFLEET_MQTT_SERVER_USER"))
                     .password(require_env("TINYFLEET_MQTT_SERVER_PASSWORD"));
  if (tls) {
    builder.ssl(mqtt::ssl_options_builder()
                    .trust_store(broker_ca_file())
                    .enable_server_cert_auth(true)
                    .verify(true)
                    .finalize());
  }
  return builder.finalize();
}

}  // namespace tinyfleet::testing
