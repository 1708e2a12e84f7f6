// The Linux port's telemetry across broker restarts. A device publishes windows as fast as
// the port takes them while its broker (a private Mosquitto with the stack's accounts,
// saving every second) goes down twice and comes back. Stopped (SIGTERM), the broker keeps
// everything it acknowledged, and every window reaches the server side in order: dropping
// each one whose seq is not above the last one seen (what fleetd's TelemetryIngest does
// with a replay) leaves 1..N. Killed (SIGKILL), it loses the little it acknowledged since
// its last save; the port still loses none and reorders none.
//
// Before the port kept its windows itself it resumed a persistent session, and Paho 1.3
// sent that session's unacknowledged publishes again on reconnect; when one of them had
// met the dead socket, Paho had freed its topic already (heap-use-after-free under ASan, in
// a fleet-sim of the NATS cluster test).
#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tinyfleet/device_agent/linux/mqtt_port.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/private_broker.h"
#include "tinyfleet/update/topics.h"

namespace tinyfleet::testing {
namespace {

constexpr uint64_t kWindows = 3000;

// The server side: the stack's server account on a persistent session (its subscription
// and what arrives while it reconnects wait at the broker), recording each window's seq.
class Collector {
 public:
  Collector(const std::string& uri, const std::string& topic)
      : topic_(topic),
        client_(uri, "tf-kill-collector-" + std::to_string(getpid()),
                mqtt::create_options(MQTTVERSION_3_1_1)) {
    client_.set_message_callback([this](mqtt::const_message_ptr m) {
      std::lock_guard<std::mutex> lock(mu_);
      seqs_.push_back(std::stoull(m->get_payload_str()));
    });
    client_.set_connected_handler([this](const std::string&) {
      try {
        client_.subscribe(topic_, 1);
      } catch (const mqtt::exception&) {
      }
    });
    client_
        .connect(mqtt::connect_options_builder()
                     .mqtt_version(MQTTVERSION_3_1_1)
                     .clean_session(false)
                     .user_name(require_env("TINYFLEET_MQTT_SERVER_USER"))
                     .password(require_env("TINYFLEET_MQTT_SERVER_PASSWORD"))
                     .automatic_reconnect(std::chrono::milliseconds(100), std::chrono::seconds(1))
                     .finalize())
        ->wait();
    client_.subscribe(topic_, 1)->wait();
  }
  ~Collector() {
    try {
      client_.disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  }
  std::vector<uint64_t> seqs() {
    std::lock_guard<std::mutex> lock(mu_);
    return seqs_;
  }

 private:
  std::string topic_;
  mqtt::async_client client_;
  std::mutex mu_;
  std::vector<uint64_t> seqs_;
};

// What fleetd stores of `arrived`: each seq above the last one stored.
std::vector<uint64_t> stored(const std::vector<uint64_t>& arrived) {
  std::vector<uint64_t> out;
  for (uint64_t s : arrived) {
    if (out.empty() || s > out.back()) out.push_back(s);
  }
  return out;
}

// Seqs in 1..sent that never arrived.
std::vector<uint64_t> missing(const std::vector<uint64_t>& arrived, uint64_t sent) {
  std::vector<bool> seen(sent + 1, false);
  for (uint64_t s : arrived) {
    if (s <= sent) seen[s] = true;
  }
  std::vector<uint64_t> out;
  for (uint64_t s = 1; s <= sent; ++s) {
    if (!seen[s]) out.push_back(s);
  }
  return out;
}

// Seqs whose first arrival came after a higher seq's (fleetd would drop them as replays).
size_t late_firsts(const std::vector<uint64_t>& arrived) {
  std::vector<bool> seen;
  uint64_t high = 0;
  size_t late = 0;
  for (uint64_t s : arrived) {
    if (s >= seen.size()) seen.resize(s + 1, false);
    if (seen[s]) continue;
    seen[s] = true;
    if (s < high) ++late;
    high = std::max(high, s);
  }
  return late;
}

class MqttPortBrokerKill : public ::testing::Test {
 protected:
  struct Outcome {
    uint64_t sent = 0;
    std::vector<uint64_t> arrived;
    uint64_t resent = 0;
    size_t unacked = 0;
  };

  // Publishes windows as fast as the port takes them (it refuses them while disconnected
  // or with kMaxUnackedWindows unacknowledged; the caller keeps them, as the inference loop
  // does) while the broker goes down twice (`crash`: SIGKILL, else SIGTERM) and comes back.
  Outcome run(bool crash) {
    broker_.start();
    const std::string fleet = "kill" + std::to_string(getpid());
    char topic[update::kMaxTopicBytes];
    EXPECT_TRUE(update::device_topic(fleet.c_str(), device_.user.c_str(),
                                     update::TopicKind::kTelemetry, topic, sizeof topic)
                    .ok());
    Collector collector(broker_.uri(), topic);
    device_agent::linux_port::MqttAgentPort port(broker_.uri(), fleet, device_.user,
                                                 device_.password);
    EXPECT_TRUE(port.connect(true));
    // The broker saves every second: let it save the collector's session before a crash.
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    std::atomic<bool> down_done{false};
    std::thread downer([&] {
      for (int i = 0; i < 2; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(400));
        crash ? broker_.kill() : broker_.stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(600));
        broker_.start();
      }
      down_done = true;
    });
    uint64_t next = 1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while ((next <= kWindows || !down_done) && std::chrono::steady_clock::now() < deadline) {
      const std::string payload = std::to_string(next);
      if (port.publish_telemetry(reinterpret_cast<const uint8_t*>(payload.data()),
                                 payload.size())) {
        ++next;
      } else {
        port.pump(1);
      }
    }
    downer.join();
    Outcome o;
    o.sent = next - 1;
    for (int i = 0; i < 300 && (port.telemetry_unacked() > 0 ||
                                stored(collector.seqs()).size() < static_cast<size_t>(o.sent));
         ++i) {
      port.pump(100);
    }
    o.arrived = collector.seqs();
    o.resent = port.telemetry_resent();
    o.unacked = port.telemetry_unacked();
    const auto lost = missing(o.arrived, o.sent);
    std::printf(
        "%llu windows sent, %zu messages arrived, %zu stored, %zu never arrived, %llu "
        "sent again by the port\n",
        static_cast<unsigned long long>(o.sent), o.arrived.size(), stored(o.arrived).size(),
        lost.size(), static_cast<unsigned long long>(o.resent));
    for (size_t i = 0; i < lost.size() && i < 20; ++i) {
      std::printf("never arrived: %llu\n", static_cast<unsigned long long>(lost[i]));
    }
    return o;
  }

  PrivateBroker broker_{/*persistence=*/true};
  const MqttAccount device_ = test_devices(29, 1)[0];
};

// A broker that stops (SIGTERM) saves everything it acknowledged: then every window arrives,
// and in order, so fleetd stores 1..N.
TEST_F(MqttPortBrokerKill, EveryWindowArrivesInOrderAcrossTwoBrokerStops) {
  const Outcome o = run(/*crash=*/false);
  ASSERT_GE(o.sent, kWindows) << "the port took too few windows in 60 s";
  EXPECT_EQ(o.unacked, 0u);
  const std::vector<uint64_t> kept = stored(o.arrived);
  ASSERT_EQ(kept.size(), static_cast<size_t>(o.sent)) << "a window is missing or out of order";
  for (uint64_t i = 0; i < o.sent; ++i) ASSERT_EQ(kept[i], i + 1);
}

// A broker that crashes (SIGKILL) loses what it acknowledged after its last save and had
// not passed on yet: a few windows, the broker's loss. The port loses none of its own (each
// is acknowledged), sends none out of order, and does not crash.
TEST_F(MqttPortBrokerKill, NoWindowIsSentOutOfOrderAcrossTwoBrokerKills) {
  const Outcome o = run(/*crash=*/true);
  ASSERT_GE(o.sent, kWindows) << "the port took too few windows in 60 s";
  EXPECT_EQ(o.unacked, 0u);
  EXPECT_EQ(late_firsts(o.arrived), 0u) << "a window arrived first after a later one";
  EXPECT_LE(missing(o.arrived, o.sent).size(),
            2 * device_agent::linux_port::MqttAgentPort::kMaxUnackedWindows);
}

}  // namespace
}  // namespace tinyfleet::testing
