// The stack's broker over TLS: a client pinning the stack's CA gets in; one pinning
// another CA (an attacker's broker would show it such a certificate, and this is the
// same check seen from the client) or speaking plaintext to the TLS listener does not.
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>

#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include "tinyfleet/device_agent/linux/mqtt_port.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/mqtt_accounts.h"

using tinyfleet::testing::broker_ca_file;
using tinyfleet::testing::require_env;
using tinyfleet::testing::tls_broker_uri;
using namespace std::chrono_literals;

namespace {

std::string client_id() {
  return "tls-" + std::to_string(getpid()) + "-" +
         ::testing::UnitTest::GetInstance()->current_test_info()->name();
}

// Connects fleetd's account to `uri`, the broker's certificate checked against `ca_file`;
// "" when connected, else what went wrong (Paho's error and OpenSSL's words).
std::string try_connect(const std::string& uri, const std::string& ca_file) {
  mqtt::async_client c(uri, client_id(), mqtt::create_options(MQTTVERSION_5));
  std::mutex mu;
  std::string tls_error;
  auto builder = mqtt::connect_options_builder()
                     .mqtt_version(MQTTVERSION_5)
                     .clean_start(true)
                     .user_name(require_env("TINYFLEET_MQTT_SERVER_USER"))
                     .password(require_env("TINYFLEET_MQTT_SERVER_PASSWORD"))
                     .connect_timeout(5s);
  if (!ca_file.empty()) {
    builder.ssl(mqtt::ssl_options_builder()
                    .trust_store(ca_file)
                    .enable_server_cert_auth(true)
                    .verify(true)
                    .error_handler([&](const std::string& m) {
                      std::lock_guard<std::mutex> lock(mu);
                      tls_error += m + "; ";
                    })
                    .finalize());
  }
  try {
    c.connect(builder.finalize())->wait();
    c.disconnect()->wait();
    return "";
  } catch (const mqtt::exception& e) {
    std::lock_guard<std::mutex> lock(mu);
    return std::string(e.what()) + " " + tls_error;
  }
}

TEST(BrokerTls, AClientPinningTheStackCaConnects) {
  EXPECT_EQ(try_connect(tls_broker_uri(), broker_ca_file()), "");
}

TEST(BrokerTls, AClientPinningAnotherCaIsRefused) {
  const std::string error = try_connect(tls_broker_uri(), require_env("TINYFLEET_TLS_ROGUE_CERT"));
  ASSERT_NE(error, "");
  EXPECT_NE(error.find("certificate verify failed"), std::string::npos) << error;
}

TEST(BrokerTls, PlaintextOnTheTlsListenerIsRefused) {
  const std::string plain =
      "tcp://" + require_env("TINYFLEET_MQTT_HOST") + ":" + require_env("TINYFLEET_MQTT_TLS_PORT");
  EXPECT_NE(try_connect(plain, ""), "");
}

// The Linux agent (and fleet-sim, which runs it) pins the CA it is given: with another
// CA it does not connect, and says why.
TEST(BrokerTls, TheAgentPinningAnotherCaDoesNotConnect) {
  tinyfleet::device_agent::linux_port::MqttAgentPort port(
      tls_broker_uri(), "tls" + std::to_string(getpid()), client_id(), "no-password-needed");
  port.set_ca_file(require_env("TINYFLEET_TLS_ROGUE_CERT"));
  EXPECT_FALSE(port.connect());
  EXPECT_NE(port.tls_error().find("certificate verify failed"), std::string::npos)
      << port.tls_error();
}

}  // namespace
