// The broker of the local stack confines each device account to its own topics.
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <thread>
#include <utility>

#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include "tinyfleet/testing/environment.h"
#include "tinyfleet/update/topics.h"

using tinyfleet::testing::require_env;
using namespace std::chrono_literals;

namespace {

struct Account {
  std::string user;
  std::string password;
};

std::vector<Account> test_devices() {
  std::vector<Account> out;
  std::istringstream in(require_env("TINYFLEET_MQTT_TEST_DEVICES"));
  std::string pair;
  while (in >> pair) {
    auto colon = pair.find(':');
    out.push_back({pair.substr(0, colon), pair.substr(colon + 1)});
  }
  return out;
}

std::string broker_uri(const char* port_variable = "TINYFLEET_MQTT_PORT") {
  return "tcp://" + require_env("TINYFLEET_MQTT_HOST") + ":" + require_env(port_variable);
}

// Client ids are unique per process and test: ctest runs these tests in parallel, and
// the broker would otherwise hand one test's session to the other.
std::unique_ptr<mqtt::async_client> connect(const Account& a, std::string client_id = "",
                                            const char* port_variable = "TINYFLEET_MQTT_PORT") {
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  if (client_id.empty()) client_id = a.user + "-" + std::to_string(getpid()) + "-" + test->name();
  auto c = std::make_unique<mqtt::async_client>(broker_uri(port_variable), client_id,
                                                mqtt::create_options(MQTTVERSION_5));
  auto opts = mqtt::connect_options_builder()
                  .mqtt_version(MQTTVERSION_5)
                  .clean_start(true)
                  .user_name(a.user)
                  .password(a.password)
                  .connect_timeout(5s)
                  .finalize();
  c->start_consuming();
  c->connect(opts)->wait();
  return c;
}

// The reason code the broker answered a request with (>= 0x80 is a refusal).
template <class TokenPtr>
int outcome(TokenPtr tok) {
  try {
    tok->wait();
    return tok->get_reason_code();
  } catch (const mqtt::exception& e) {
    return e.get_reason_code() != 0 ? e.get_reason_code() : 0x80;
  }
}

// Messages arriving within `wait`, by topic.
std::vector<std::string> drain(mqtt::async_client& c, std::chrono::milliseconds wait) {
  std::vector<std::string> topics;
  mqtt::const_message_ptr msg;
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (c.try_consume_message_for(&msg, 50ms) && msg) topics.push_back(msg->get_topic());
  }
  return topics;
}

// A fleet of this process's own, so parallel runs never see each other's messages; the
// topics are the ones update/ builds, so the ACL is checked against what devices use.
const std::string kFleet = "acl" + std::to_string(getpid());

std::string topic(const std::string& device, tinyfleet::update::TopicKind kind) {
  char out[tinyfleet::update::kMaxTopicBytes];
  EXPECT_TRUE(
      tinyfleet::update::device_topic(kFleet.c_str(), device.c_str(), kind, out, sizeof out).ok());
  return out;
}

}  // namespace

TEST(BrokerAcl, ADevicePublishesOnItsOwnTopicsOnly) {
  auto devices = test_devices();
  ASSERT_GE(devices.size(), 2u);
  auto server = connect(
      {require_env("TINYFLEET_MQTT_SERVER_USER"), require_env("TINYFLEET_MQTT_SERVER_PASSWORD")});
  ASSERT_LT(outcome(server->subscribe("tinyfleet/#", 1)), 0x80);
  auto dev = connect(devices[0]);

  // Every kind a device publishes.
  using tinyfleet::update::TopicKind;
  for (TopicKind kind : {TopicKind::kChunkRequest, TopicKind::kStatus, TopicKind::kTelemetry,
                         TopicKind::kPresence}) {
    const std::string own = topic(devices[0].user, kind);
    const std::string foreign = topic(devices[1].user, kind);
    EXPECT_LT(outcome(dev->publish(own, "ok", 2, 1, false)), 0x80) << own;
    EXPECT_EQ(outcome(dev->publish(foreign, "spoof", 5, 1, false)), 0x87) << foreign;

    auto seen = drain(*server, 700ms);
    EXPECT_EQ(std::count(seen.begin(), seen.end(), own), 1) << own;
    EXPECT_EQ(std::count(seen.begin(), seen.end(), foreign), 0) << foreign;
  }
}

TEST(BrokerAcl, ADeviceSubscribesToItsOwnOfferOnly) {
  auto devices = test_devices();
  auto server = connect(
      {require_env("TINYFLEET_MQTT_SERVER_USER"), require_env("TINYFLEET_MQTT_SERVER_PASSWORD")});
  auto dev = connect(devices[0]);
  const std::string own = topic(devices[0].user, tinyfleet::update::TopicKind::kOffer);
  const std::string foreign = topic(devices[1].user, tinyfleet::update::TopicKind::kOffer);
  EXPECT_LT(outcome(dev->subscribe(own, 1)), 0x80);
  // Mosquitto 2.0 may grant the SUBACK and enforce the ACL on every delivery
  // instead; what matters is that nothing of another device's arrives.
  dev->subscribe(foreign, 1)->wait_for(2s);

  ASSERT_LT(outcome(server->publish(own, "offer-0", 7, 1, false)), 0x80);
  ASSERT_LT(outcome(server->publish(foreign, "offer-1", 7, 1, false)), 0x80);
  auto seen = drain(*dev, 700ms);
  EXPECT_EQ(seen, std::vector<std::string>{own});
}

TEST(BrokerAcl, AWrongPasswordIsRefused) {
  auto devices = test_devices();
  EXPECT_THROW(connect({devices[0].user, devices[0].password + "x"}), mqtt::exception);
  EXPECT_THROW(connect({"nobody", "nothing"}), mqtt::exception);
}

// The stack's broker configuration (deploy/local/stack.sh; docs/local-stack.md, "Broker
// limits"): max_packet_size a little above the largest legitimate message, the largest
// chunk answer, and a devices' listener where the client id is the user name.
TEST(BrokerLimits, AnOversizedPacketIsRefusedAndTheLargestChunkPasses) {
  // devices[2]: the other test on the devices' listener uses 0 and 1 (client id = user
  // name there, and ctest may run both at once).
  auto devices = test_devices();
  ASSERT_GE(devices.size(), 3u);
  const Account server{require_env("TINYFLEET_MQTT_SERVER_USER"),
                       require_env("TINYFLEET_MQTT_SERVER_PASSWORD")};
  auto fleetd = connect(server);
  auto dev = connect(devices[2], "", "TINYFLEET_MQTT_DEVICE_PORT");
  const std::string chunk_topic = topic(devices[2].user, tinyfleet::update::TopicKind::kChunk);
  ASSERT_LT(outcome(dev->subscribe(chunk_topic, 1)), 0x80);

  // A chunk answer of 64 KiB (20 bytes of framing and the data) goes through.
  const std::string answer(20 + 64 * 1024, 'c');
  ASSERT_LT(outcome(fleetd->publish(chunk_topic, answer.data(), answer.size(), 1, false)), 0x80);
  mqtt::const_message_ptr msg;
  ASSERT_TRUE(dev->try_consume_message_for(&msg, 5s) && msg);
  EXPECT_EQ(msg->get_payload().size(), answer.size());

  // A status of 70,000 bytes is more than the broker takes: the device is disconnected
  // and nothing reaches fleetd.
  const std::string status_topic = topic(devices[2].user, tinyfleet::update::TopicKind::kStatus);
  ASSERT_LT(outcome(fleetd->subscribe(status_topic, 1)), 0x80);
  const std::string oversized(70000, 'x');
  try {
    dev->publish(status_topic, oversized.data(), oversized.size(), 1, false)->wait_for(3s);
  } catch (const mqtt::exception&) {  // the connection went with the packet
  }
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (dev->is_connected() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_FALSE(dev->is_connected());
  EXPECT_TRUE(drain(*fleetd, 500ms).empty());
  EXPECT_TRUE(fleetd->is_connected());
}

TEST(BrokerLimits, ADeviceReusingAClientIdTakesNoOtherSession) {
  auto devices = test_devices();
  ASSERT_GE(devices.size(), 2u);
  const Account server{require_env("TINYFLEET_MQTT_SERVER_USER"),
                       require_env("TINYFLEET_MQTT_SERVER_PASSWORD")};
  const std::string fleetd_id = "fleetd-" + std::to_string(getpid()) + "-listener";
  auto fleetd = connect(server, fleetd_id);
  const std::string status_topic = topic(devices[0].user, tinyfleet::update::TopicKind::kStatus);
  ASSERT_LT(outcome(fleetd->subscribe(status_topic, 1)), 0x80);
  auto other = connect(devices[1], "", "TINYFLEET_MQTT_DEVICE_PORT");

  // On the devices' listener the broker replaces the client id with the user name:
  // fleetd's and the other device's sessions stay.
  auto as_fleetd = connect(devices[0], fleetd_id, "TINYFLEET_MQTT_DEVICE_PORT");
  std::this_thread::sleep_for(700ms);
  EXPECT_TRUE(fleetd->is_connected());
  EXPECT_TRUE(as_fleetd->is_connected());
  auto as_other = connect(devices[0], devices[1].user, "TINYFLEET_MQTT_DEVICE_PORT");
  std::this_thread::sleep_for(700ms);
  EXPECT_TRUE(other->is_connected());
  EXPECT_TRUE(fleetd->is_connected());
  // The second connection of devices[0] took over the first: both are devices[0]'s.
  EXPECT_FALSE(as_fleetd->is_connected());

  // fleetd still hears the device.
  ASSERT_LT(outcome(as_other->publish(status_topic, "ok", 2, 1, false)), 0x80);
  auto seen = drain(*fleetd, 700ms);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), status_topic), 1);
}
