#include "tinyfleet/testing/environment.h"

#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace tinyfleet::testing {

std::string require_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    throw std::runtime_error(std::string(name) +
                             " is not set: run the suite through deploy/local/run-tests.sh, "
                             "which starts PostgreSQL and Mosquitto and exports it");
  }
  return v;
}

std::vector<MqttAccount> test_devices(int first, int count) {
  std::istringstream in(require_env("TINYFLEET_MQTT_TEST_DEVICES"));
  std::vector<MqttAccount> all;
  for (std::string pair; in >> pair;) {
    const auto colon = pair.find(':');
    all.push_back({pair.substr(0, colon), pair.substr(colon + 1)});
  }
  if (first < 0 || count < 0 || static_cast<size_t>(first + count) > all.size()) {
    throw std::runtime_error("the stack made " + std::to_string(all.size()) +
                             " test device accounts; this test needs " +
                             std::to_string(first + count));
  }
  return {all.begin() + first, all.begin() + first + count};
}

std::string tls_broker_uri(bool devices) {
  return "ssl://" + require_env("TINYFLEET_MQTT_HOST") + ":" +
         require_env(devices ? "TINYFLEET_MQTT_DEVICE_TLS_PORT" : "TINYFLEET_MQTT_TLS_PORT");
}

std::string broker_ca_file() { return require_env("TINYFLEET_TLS_CA"); }

std::string fixture_path(const std::string& relative) {
  return std::string(TINYFLEET_FIXTURES_DIR) + "/" + relative;
}

}  // namespace tinyfleet::testing
