// Test helper: MQTT connect options for the local stack's server account (the account
// fleetd uses; it may read every device topic). Header-only: tests that include it link
// Paho MQTT C++ already.
#pragma once

#include <mqtt/async_client.h>

#include "tinyfleet/testing/environment.h"

namespace tinyfleet::testing {

inline mqtt::connect_options server_account_options() {
  return mqtt::connect_options_builder()
      .mqtt_version(MQTTVERSION_5)
      .user_name(require_env("TINYFLEET_MQTT_SERVER_USER"))
      .password(require_env("TINYFLEET_MQTT_SERVER_PASSWORD"))
      .finalize();
}

}  // namespace tinyfleet::testing
