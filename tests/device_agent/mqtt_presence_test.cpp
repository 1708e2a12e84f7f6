// Presence over the real broker: the Linux port says "online" when it connects, and the
// broker publishes its will, "offline", when the device dies without disconnecting.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <mqtt/async_client.h>

#include "tinyfleet/device_agent/linux/mqtt_port.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/mqtt_accounts.h"
#include "tinyfleet/update/presence_message.h"
#include "tinyfleet/update/topics.h"

using namespace tinyfleet;
using tinyfleet::testing::require_env;

TEST(MqttPresence, ADeviceThatDiesIsReportedOfflineByItsWill) {
  const auto account = tinyfleet::testing::test_devices(8, 1).front();
  const std::string device = account.user;
  const std::string password = account.password;
  const std::string fleet = "presence" + std::to_string(getpid());
  const std::string uri = tinyfleet::testing::tls_broker_uri();  // the agent pins the CA
  char topic[update::kMaxTopicBytes];
  ASSERT_TRUE(update::device_topic(fleet.c_str(), device.c_str(), update::TopicKind::kPresence,
                                   topic, sizeof topic)
                  .ok());

  // The device runs in a child (forked before this process starts any MQTT client), which
  // connects when told to and is then killed.
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c;
    if (read(go[0], &c, 1) != 1) _exit(2);
    device_agent::linux_port::MqttAgentPort port(uri, fleet, device, password);
    port.set_ca_file(tinyfleet::testing::broker_ca_file());
    if (!port.connect()) _exit(3);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }

  std::mutex mu;
  std::condition_variable cv;
  std::vector<update::Presence> seen;
  mqtt::async_client watcher(uri, "presence-watch-" + fleet, mqtt::create_options(MQTTVERSION_5));
  watcher.set_message_callback([&](mqtt::const_message_ptr m) {
    const std::string& payload = m->get_payload();
    update::PresenceMessage p;
    ASSERT_TRUE(update::decode_presence(reinterpret_cast<const uint8_t*>(payload.data()),
                                        payload.size(), &p)
                    .ok());
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(p.presence);
    cv.notify_all();
  });
  watcher.connect(tinyfleet::testing::server_account_options(true))->wait();
  watcher.subscribe(topic, 1)->wait();
  ASSERT_EQ(write(go[1], "g", 1), 1);

  auto wait_for = [&](size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return seen.size() >= n; });
  };
  ASSERT_TRUE(wait_for(1)) << "the device never said it is online";
  EXPECT_EQ(seen[0], update::Presence::kOnline);
  kill(child, SIGKILL);  // no DISCONNECT: the broker sends the will
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(wait_for(2)) << "no will after the device died";
  EXPECT_EQ(seen[1], update::Presence::kOffline);
  watcher.disconnect()->wait();
}
