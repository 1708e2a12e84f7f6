// The firmware's MQTT 3.1.1 client (firmware/src/mqtt_client.cpp) over a host TCP
// transport against the stack's Mosquitto, with a test device account (index 20 of
// tinyfleet::testing::test_devices): connect, subscribe, a retained message published
// by mosquitto_pub, QoS 1 both ways, keep-alive pings, a wrong password refused by its
// CONNACK code, reconnection with back-off after the broker drops the session, and the
// will published when the link drops without DISCONNECT (not after one).
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mqtt_test_support.h"
#include "tinyfleet/device_agent/linux/tcp_transport.h"
#include "tinyfleet/firmware/mqtt_client.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/update/topics.h"

using namespace tinyfleet::firmware::mqtt;
using tinyfleet::device_agent::linux_port::TcpTransport;
using tinyfleet::testing::require_env;
using namespace std::chrono_literals;

namespace {

// Records what the client reports.
struct Recorder : Handler {
  void on_connected(bool) override {
    ++connected;
    if (on_connect) on_connect();
  }
  void on_refused(ConnectReturn code) override { refusals.push_back(code); }
  void on_disconnected(LinkEvent why) override { losses.push_back(why); }
  void on_message(const Message& m) override {
    topics.emplace_back(m.topic, m.topic_size);
    payloads.emplace_back(reinterpret_cast<const char*>(m.payload), m.payload_size);
    retained.push_back(m.retain);
    qos.push_back(m.qos);
  }
  void on_suback(uint16_t id, uint8_t code) override { subacks.push_back({id, code}); }
  void on_puback(uint16_t id) override { pubacks.push_back(id); }
  void on_dropped(size_t bytes) override { dropped.push_back(bytes); }

  int connected = 0;
  std::function<void()> on_connect;
  std::vector<ConnectReturn> refusals;
  std::vector<LinkEvent> losses;
  std::vector<std::string> topics, payloads;
  std::vector<bool> retained;
  std::vector<uint8_t> qos;
  std::vector<std::pair<uint16_t, uint8_t>> subacks;
  std::vector<uint16_t> pubacks;
  std::vector<size_t> dropped;
};

using Client = StaticMqttClient<512, 512>;

// Polls until `done` or `limit` passes; true if done.
bool poll_until(MqttClient& c, const std::function<bool()>& done,
                std::chrono::milliseconds limit = 5s) {
  return tinyfleet::firmware_test::poll_until([&] { c.poll(); }, done, limit);
}

std::string shell(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(command.c_str(), "r"), ::pclose);
  if (!p) return out;
  std::array<char, 256> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p.get())) > 0) out.append(buf.data(), n);
  return out;
}

// mosquitto_pub/_sub as fleetd (the server account may use every device topic).
std::string server_args() {
  return " -V mqttv311 -h " + require_env("TINYFLEET_MQTT_HOST") + " -p " +
         require_env("TINYFLEET_MQTT_PORT") + " -u " + require_env("TINYFLEET_MQTT_SERVER_USER") +
         " -P " + require_env("TINYFLEET_MQTT_SERVER_PASSWORD");
}
void publish_retained(const std::string& topic, const std::string& payload) {
  const std::string cmd = "mosquitto_pub" + server_args() + " -q 1 -r -t '" + topic + "' " +
                          (payload.empty() ? "-n" : "-m '" + payload + "'");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}
// The retained message on `topic`, as text ("" if none within 3 s).
std::string read_retained(const std::string& topic) {
  return shell("mosquitto_sub" + server_args() + " -C 1 -W 3 -t '" + topic + "' 2>/dev/null");
}

class FirmwareMqtt : public ::testing::Test {
 protected:
  void SetUp() override {
    account_ = tinyfleet::testing::test_devices(24, 1).front();
    // A fleet of this process and test: parallel runs never share retained messages.
    fleet_ = "fwmqtt" + std::to_string(getpid()) +
             ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fleet_.resize(std::min<size_t>(fleet_.size(), tinyfleet::update::kMaxNameBytes));
    // fleetd's listener: the client id is ours, so the tests of this binary that ctest
    // runs at once do not take over each other's session (the ACL is the same).
    client_id_ = account_.user + "-" + fleet_;
    options_ = tinyfleet::firmware_test::device_client_options(client_id_, account_);
    options_.connect_timeout_ms = 5000;
  }
  void TearDown() override {
    for (const auto& t : retained_topics_) publish_retained(t, "");
  }
  std::string topic(tinyfleet::update::TopicKind kind) {
    char out[tinyfleet::update::kMaxTopicBytes];
    EXPECT_TRUE(tinyfleet::update::device_topic(fleet_.c_str(), account_.user.c_str(), kind, out,
                                                sizeof out)
                    .ok());
    return out;
  }
  std::unique_ptr<TcpTransport> transport() {
    return std::make_unique<TcpTransport>(require_env("TINYFLEET_MQTT_HOST"),
                                          std::stoi(require_env("TINYFLEET_MQTT_PORT")));
  }

  tinyfleet::testing::MqttAccount account_;
  // A retained will "gone <fleet>" at `qos` on this device's presence topic (cleared at the
  // end); returns the topic.
  const std::string& retained_will(uint8_t qos) {
    will_topic_ = topic(tinyfleet::update::TopicKind::kPresence);
    retained_topics_.push_back(will_topic_);
    will_ = "gone " + fleet_;
    options_.connect.will_topic = will_topic_.c_str();
    options_.connect.will_payload = reinterpret_cast<const uint8_t*>(will_.data());
    options_.connect.will_payload_size = will_.size();
    options_.connect.will_qos = qos;
    options_.connect.will_retain = true;
    return will_topic_;
  }

  std::string fleet_, client_id_, will_topic_, will_;
  ClientOptions options_;
  std::vector<std::string> retained_topics_;
};

TEST_F(FirmwareMqtt, SubscribesAndReceivesARetainedMessage) {
  const std::string offer = topic(tinyfleet::update::TopicKind::kOffer);
  const std::string payload = "offer of " + fleet_;
  publish_retained(offer, payload);
  retained_topics_.push_back(offer);

  auto tcp = transport();
  Recorder r;
  Client client(*tcp, r);
  uint16_t sub_id = 0;
  r.on_connect = [&] { EXPECT_EQ(client.subscribe(offer.c_str(), 1, &sub_id), MqttError::kOk); };
  client.start(options_);
  ASSERT_TRUE(poll_until(client, [&] { return !r.payloads.empty(); }))
      << "connected " << r.connected << ", subacks " << r.subacks.size() << ", attempts "
      << client.counters().attempts << ", losses " << r.losses.size() << " "
      << (r.losses.empty() ? "" : to_string(r.losses[0])) << ", error "
      << to_string(client.last_error());
  EXPECT_EQ(client.state(), ClientState::kConnected);
  ASSERT_EQ(r.subacks.size(), 1u);
  EXPECT_EQ(r.subacks[0].first, sub_id);
  EXPECT_EQ(r.subacks[0].second, 1);  // granted QoS 1
  EXPECT_EQ(r.topics[0], offer);
  EXPECT_EQ(r.payloads[0], payload);
  EXPECT_TRUE(r.retained[0]);
  EXPECT_EQ(r.qos[0], 1);  // the client acknowledged it with a PUBACK
  // A message published after the subscription arrives too (not retained).
  publish_retained(offer, "second");
  ASSERT_TRUE(poll_until(client, [&] { return r.payloads.size() == 2; }));
  EXPECT_EQ(r.payloads[1], "second");
  EXPECT_FALSE(r.retained[1]);
  client.disconnect();
  EXPECT_EQ(client.state(), ClientState::kStopped);
  ASSERT_EQ(r.losses.size(), 1u);
  EXPECT_EQ(r.losses[0], LinkEvent::kClosedByClient);
}

TEST_F(FirmwareMqtt, PublishesQos1AndGetsThePuback) {
  const std::string status = topic(tinyfleet::update::TopicKind::kStatus);
  retained_topics_.push_back(status);
  auto tcp = transport();
  Recorder r;
  Client client(*tcp, r);
  client.start(options_);
  ASSERT_TRUE(poll_until(client, [&] { return r.connected == 1; }));
  const std::string payload = "status of " + fleet_;
  uint16_t id = 0;
  ASSERT_EQ(client.publish(status.c_str(), reinterpret_cast<const uint8_t*>(payload.data()),
                           payload.size(), 1, true, &id),
            MqttError::kOk);
  EXPECT_NE(id, 0);
  ASSERT_TRUE(poll_until(client, [&] { return !r.pubacks.empty(); }));
  EXPECT_EQ(r.pubacks[0], id);
  // QoS 0: no acknowledgement, no packet id.
  uint16_t id0 = 99;
  ASSERT_EQ(client.publish(topic(tinyfleet::update::TopicKind::kTelemetry).c_str(),
                           reinterpret_cast<const uint8_t*>("t"), 1, 0, false, &id0),
            MqttError::kOk);
  EXPECT_EQ(id0, 0);
  client.disconnect();
  EXPECT_EQ(read_retained(status), payload + "\n");
  EXPECT_EQ(client.counters().published, 2u);
  EXPECT_EQ(r.pubacks.size(), 1u);
}

TEST_F(FirmwareMqtt, KeepsTheConnectionAliveWithPings) {
  options_.connect.keep_alive_s = 1;  // a PINGREQ after 750 ms of silence
  auto tcp = transport();
  Recorder r;
  Client client(*tcp, r);
  client.start(options_);
  ASSERT_TRUE(poll_until(client, [&] { return r.connected == 1; }));
  EXPECT_FALSE(poll_until(
      client, [&] { return !r.losses.empty(); }, 2600ms));
  EXPECT_GE(client.counters().pings_sent, 3u);
  EXPECT_GE(client.counters().pongs + 1, client.counters().pings_sent);
  EXPECT_GE(client.counters().pongs, 2u);
  EXPECT_EQ(client.state(), ClientState::kConnected);
  EXPECT_EQ(client.counters().attempts, 1u);
}

TEST_F(FirmwareMqtt, AWrongPasswordIsRefusedWithItsConnackCodeAndRetriedWithBackOff) {
  const std::string wrong = account_.password + "x";
  options_.connect.password = wrong.c_str();
  auto tcp = transport();
  Recorder r;
  Client client(*tcp, r);
  client.start(options_);
  ASSERT_TRUE(poll_until(client, [&] { return !r.refusals.empty(); }));
  // Mosquitto answers a 3.1.1 client's failed password with "not authorized" (5).
  EXPECT_EQ(r.refusals[0], ConnectReturn::kNotAuthorized);
  EXPECT_EQ(r.losses.at(0), LinkEvent::kRefused);
  EXPECT_EQ(client.state(), ClientState::kBackoff);
  EXPECT_EQ(client.retry_wait_ms(), 200u);
  EXPECT_EQ(r.connected, 0);
  const auto first = std::chrono::steady_clock::now();
  ASSERT_TRUE(poll_until(client, [&] { return r.refusals.size() == 2; }));
  EXPECT_GE(std::chrono::steady_clock::now() - first, 190ms);
  EXPECT_EQ(client.retry_wait_ms(), 400u);  // doubled
  ASSERT_TRUE(poll_until(client, [&] { return r.refusals.size() == 4; }));
  EXPECT_EQ(client.retry_wait_ms(), 1000u);  // capped at backoff_max_ms
  EXPECT_EQ(client.counters().attempts, 4u);
  client.disconnect();
}

TEST_F(FirmwareMqtt, ReconnectsWithBackOffWhenTheBrokerDropsTheSession) {
  const std::string offer = topic(tinyfleet::update::TopicKind::kOffer);
  publish_retained(offer, "retained");
  retained_topics_.push_back(offer);
  auto tcp = transport();
  Recorder r;
  Client client(*tcp, r);
  r.on_connect = [&] { client.subscribe(offer.c_str(), 1, nullptr); };
  client.start(options_);
  ASSERT_TRUE(poll_until(client, [&] { return r.payloads.size() == 1; }));

  // Another connection with the same client id: the broker closes ours (3.1.4).
  auto tcp2 = transport();
  Recorder r2;
  Client intruder(*tcp2, r2);
  ClientOptions once = options_;
  once.backoff_initial_ms = 60000;  // it connects once and stays away
  intruder.start(once);
  ASSERT_TRUE(poll_until(intruder, [&] { return r2.connected == 1; }));
  ASSERT_TRUE(poll_until(client, [&] { return !r.losses.empty(); }));
  EXPECT_EQ(r.losses[0], LinkEvent::kTransportLost);
  EXPECT_EQ(client.state(), ClientState::kBackoff);
  const auto lost = std::chrono::steady_clock::now();
  // Back after the back-off, subscribed again, the retained message delivered again.
  ASSERT_TRUE(poll_until(client, [&] { return r.payloads.size() == 2; }));
  EXPECT_GE(std::chrono::steady_clock::now() - lost, 190ms);
  EXPECT_EQ(r.connected, 2);
  EXPECT_EQ(r.payloads[1], "retained");
  EXPECT_EQ(tcp->opens(), 2);
  client.disconnect();
}

TEST_F(FirmwareMqtt, SkipsAPacketLargerThanItsReceiveBufferAndStaysInStep) {
  const std::string offer = topic(tinyfleet::update::TopicKind::kOffer);
  const std::string big(2000, 'x');  // over the 512-byte receive buffer
  publish_retained(offer, big);
  retained_topics_.push_back(offer);
  auto tcp = transport();
  Recorder r;
  Client client(*tcp, r);
  r.on_connect = [&] { client.subscribe(offer.c_str(), 1, nullptr); };
  client.start(options_);
  ASSERT_TRUE(poll_until(client, [&] { return !r.dropped.empty(); }));
  // Fixed header (3 B), topic (2 + length), packet id (2), payload.
  EXPECT_EQ(r.dropped[0], 3 + 2 + offer.size() + 2 + big.size());
  EXPECT_TRUE(r.payloads.empty());
  // The next packet after the skipped one is read whole: the stream stays in step.
  publish_retained(offer, "small");
  ASSERT_TRUE(poll_until(client, [&] { return !r.payloads.empty(); }));
  EXPECT_EQ(r.payloads[0], "small");
  EXPECT_EQ(client.state(), ClientState::kConnected);
  EXPECT_EQ(client.counters().dropped, 1u);
  client.disconnect();
}

// Collects a large payload as the client hands it over.
struct Collector : PayloadSink {
  bool begin(const Message& head) override {
    heads.emplace_back(head.topic, head.topic_size);
    sizes.push_back(head.payload_size);
    qos.push_back(head.qos);
    data.clear();
    return take;
  }
  void piece(const uint8_t* d, size_t n) override {
    data.append(reinterpret_cast<const char*>(d), n);
    ++pieces;
  }
  void end() override { done.push_back(data); }

  bool take = true;
  std::vector<std::string> heads, done;
  std::vector<size_t> sizes;
  std::vector<uint8_t> qos;
  std::string data;
  int pieces = 0;
};

TEST_F(FirmwareMqtt, StreamsAPacketLargerThanItsReceiveBufferToASinkInPieces) {
  const std::string offer = topic(tinyfleet::update::TopicKind::kOffer);
  std::string big;
  for (int i = 0; i < 600; ++i) big += std::to_string(i % 10);  // 600 B in a 128-byte buffer
  big += big + big;
  publish_retained(offer, big);
  retained_topics_.push_back(offer);
  auto tcp = transport();
  Recorder r;
  Collector sink;
  options_.large_payloads = &sink;
  StaticMqttClient<512, 128> client(*tcp, r);
  r.on_connect = [&] { client.subscribe(offer.c_str(), 1, nullptr); };
  client.start(options_);
  ASSERT_TRUE(poll_until(client, [&] { return !sink.done.empty(); }));
  EXPECT_EQ(sink.heads[0], offer);
  EXPECT_EQ(sink.sizes[0], big.size());
  EXPECT_EQ(sink.qos[0], 1);
  EXPECT_EQ(sink.done[0], big);  // every byte, in order
  EXPECT_GE(sink.pieces, static_cast<int>(big.size() / 128));
  EXPECT_TRUE(r.dropped.empty());
  EXPECT_TRUE(r.payloads.empty());  // a streamed message is not also given to on_message
  // The stream stays in step: a small message next is read whole; a large one the sink
  // declines is skipped whole, and the one after it is read again.
  publish_retained(offer, "small");
  ASSERT_TRUE(poll_until(client, [&] { return !r.payloads.empty(); }));
  EXPECT_EQ(r.payloads[0], "small");
  sink.take = false;
  publish_retained(offer, big);
  ASSERT_TRUE(poll_until(client, [&] { return !r.dropped.empty(); }));
  EXPECT_EQ(sink.done.size(), 1u);
  publish_retained(offer, "after");
  ASSERT_TRUE(poll_until(client, [&] { return r.payloads.size() == 2; }));
  EXPECT_EQ(r.payloads[1], "after");
  // The QoS 1 message was acknowledged: the broker sent no duplicate, the link is up.
  EXPECT_EQ(client.state(), ClientState::kConnected);
  EXPECT_EQ(client.counters().received, 3u);  // the skipped one is not counted
  client.disconnect();
}

TEST_F(FirmwareMqtt, TheBrokerPublishesTheWillWhenTheLinkDropsWithoutDisconnect) {
  const std::string presence = retained_will(1);
  auto tcp = transport();
  Recorder r;
  Client client(*tcp, r);
  client.start(options_);
  ASSERT_TRUE(poll_until(client, [&] { return r.connected == 1; }));
  EXPECT_EQ(read_retained(presence), "");  // no will while connected
  tcp->close();                            // the link drops: no DISCONNECT reaches the broker
  EXPECT_EQ(read_retained(presence), will_ + "\n");
}

TEST_F(FirmwareMqtt, NoWillAfterACleanDisconnect) {
  const std::string presence = retained_will(0);
  auto tcp = transport();
  Recorder r;
  Client client(*tcp, r);
  client.start(options_);
  ASSERT_TRUE(poll_until(client, [&] { return r.connected == 1; }));
  client.disconnect();  // DISCONNECT first: the broker discards the will (3.14.4)
  EXPECT_EQ(read_retained(presence), "");
}

}  // namespace
