#pragma once

#include <string>
#include <vector>

namespace tinyfleet::testing {

// A variable exported by deploy/local/stack.sh; fails the test with a message
// saying how to run the suite when it is missing.
std::string require_env(const char* name);

// Device accounts on the stack's broker (TINYFLEET_MQTT_TEST_DEVICES; stack.sh makes
// 33). ctest runs tests at once and a device's client id is its user name on the
// devices' listener, so tests that may overlap use distinct accounts:
//   0-1 BrokerAcl.ADevicePublishesOnItsOwnTopicsOnly   2-3 BrokerAcl.ADeviceSubscribes...
//   4   BrokerAcl.AWrongPasswordIsRefused              5   BrokerLimits.AnOversizedPacket...
//   6-7 BrokerLimits.ADeviceReusingAClientId...        8   MqttPresence
//   9   MqttUpdate.AFineTuned...  10 MqttUpdate.ARateBound...  11 MqttUpdate.ABrokerRestart...
//   12-14 FleetSim/paho           15-16 PublisherBounds.AFlooding...
//   17  PublisherBounds.Payloads...                    18  HostileDevice
//   19  Presence (fleetd_hostile_device_test)
//   20-23 FleetdTelemetry (fleetd_telemetry_test: two a test)
//   24  FirmwareMqtt (the firmware's MQTT client on the host)
//   25  firmware_mqtt_uart_qemu (the same client on the Cortex-M4 under QEMU)
//   26  FirmwareOutbox (the agent core over that client on the host)
//   27  (reserved: the reference firmware under QEMU)
//   28  ListenerBrokerRestart (on a private broker with the stack's accounts)
//   29  MqttPortBrokerKill (on a private broker with the stack's accounts)
//   30-32 FleetSim/firmware (fleet-sim --sessions firmware)
struct MqttAccount {
  std::string user;
  std::string password;
};
// Accounts first .. first + count - 1; fails the test if the stack made fewer.
std::vector<MqttAccount> test_devices(int first, int count);

// The stack's broker over TLS: "ssl://host:port" of fleetd's TLS listener, or with
// `devices` the devices' (client id = user name); its certificate chains to
// broker_ca_file() (TINYFLEET_TLS_CA), which clients pin.
std::string tls_broker_uri(bool devices = false);
std::string broker_ca_file();

// The fixtures committed under tests/fixtures/ (models, data).
std::string fixture_path(const std::string& relative);

}  // namespace tinyfleet::testing
