// fleetd's listener across a Mosquitto restart (a private broker configured as the stack's:
// persistence, saved every second). The listener resumes a persistent session
// (`mqtt.session`), and what devices send while it is away waits at the broker for it. After
// a broker restart that holds only for its plain subscriptions: Mosquitto 2.0 saves a
// session's plain subscriptions in its persistence file but not its shared ones
// (`$share/...`), so with a share group a device's window sent after the restart and
// before fleetd subscribes again has no subscriber and is dropped. One fleetd therefore
// runs with `mqtt.share_group` empty (docs/rollouts.md).
#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "tinyfleet/server/fleet_listener.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/private_broker.h"

namespace tinyfleet::testing {
namespace {

class ListenerBrokerRestart : public ::testing::Test {
 protected:
  std::unique_ptr<server::FleetListener> listener(const std::string& share_group) {
    auto l = std::make_unique<server::FleetListener>(
        broker_.uri(), require_env("TINYFLEET_MQTT_SERVER_USER"),
        require_env("TINYFLEET_MQTT_SERVER_PASSWORD"), "unused", share_group,
        [](const std::string&, const std::string&, const std::string&) {},
        [this](const std::string&, const std::string& device, const std::string& payload) {
          if (device == device_.user && payload == "window") ++windows_;
        });
    l->set_persistent_session("tf-lbr-" + std::to_string(getpid()) + "-" + share_group);
    return l;
  }

  // A device (its own account, client id = user name) publishes one window at QoS 1 and
  // waits for the broker's acknowledgement.
  void device_publishes_a_window() {
    mqtt::async_client c(broker_.uri(), device_.user, mqtt::create_options(MQTTVERSION_3_1_1));
    c.connect(mqtt::connect_options_builder()
                  .mqtt_version(MQTTVERSION_3_1_1)
                  .clean_session(true)
                  .user_name(device_.user)
                  .password(device_.password)
                  .finalize())
        ->wait();
    c.publish("tinyfleet/v1/default/" + device_.user + "/telemetry", std::string("window"), 1,
              false)
        ->wait();
    c.disconnect()->wait();
  }

  bool window_arrives(int seconds) {
    for (int i = 0; i < seconds * 10 && windows_ == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return windows_ > 0;
  }

  // The listener subscribes and goes away (its session stays); the broker saves and
  // restarts; a device sends a window; the listener comes back. Did the window reach it?
  bool a_window_sent_after_the_restart_arrives(const std::string& share_group) {
    broker_.start();
    auto l = listener(share_group);
    if (!l->start()) return false;
    l->stop();
    l.reset();
    // A stop writes the persistence file at once (a SIGKILL keeps the last autosave, every
    // second, which a loaded machine may not have made yet): what the file keeps of the
    // session is the same either way.
    broker_.stop();
    broker_.start();
    device_publishes_a_window();
    l = listener(share_group);
    EXPECT_TRUE(l->start());
    const bool arrived = window_arrives(10);
    l->stop();
    return arrived;
  }

  PrivateBroker broker_{/*persistence=*/true};
  const MqttAccount device_ = test_devices(28, 1)[0];
  std::atomic<int> windows_{0};
};

TEST_F(ListenerBrokerRestart, APlainSubscriptionKeepsAWindowSentBeforeFleetdIsBack) {
  EXPECT_TRUE(a_window_sent_after_the_restart_arrives(""));
}

// Mosquitto's limit, asserted so that a broker which starts keeping shared subscriptions
// shows up here (then a share group would be as safe for one fleetd).
TEST_F(ListenerBrokerRestart, MosquittoForgetsASharedSubscriptionWhenItRestarts) {
  EXPECT_FALSE(a_window_sent_after_the_restart_arrives("lbr"));
}

}  // namespace
}  // namespace tinyfleet::testing
