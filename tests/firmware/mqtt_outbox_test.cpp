// The agent core over the firmware's MQTT client (firmware/src/mqtt_outbox.cpp) on the
// host, against the stack's Mosquitto with test device 26: a signed offer larger than the
// client's receive buffer streamed into the lent delta workspace, the TensorRange delta it
// names downloaded chunk by chunk from a "server" (a second client on fleetd's account),
// patched, self-tested and switched to; the retained status read back; telemetry at QoS 0;
// chunk requests cut to fit the receive buffer; presence online, and the will "offline".
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fixture_model.h"
#include "mqtt_test_support.h"
#include "tinyfleet/device_agent/kernels_runner.h"
#include "tinyfleet/device_agent/linux/tcp_transport.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/firmware/mqtt_outbox.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/update/chunk_framing.h"
#include "tinyfleet/update/delta_encoder.h"
#include "tinyfleet/update/offer_signer.h"
#include "tinyfleet/update/presence_message.h"
#include "tinyfleet/update/sodium_crypto.h"
#include "tinyfleet/update/status_message.h"
#include "tinyfleet/update/update_keys.h"

namespace mqtt = tinyfleet::firmware::mqtt;
namespace update = tinyfleet::update;
namespace da = tinyfleet::device_agent;
using tinyfleet::device_agent::linux_port::TcpTransport;
using tinyfleet::firmware::MqttOutbox;
using tinyfleet::firmware::StaticMqttOutbox;
using tinyfleet::testing::require_env;
using update::TopicKind;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kNow = 1795305600;
constexpr uint64_t kRelease = 8;
constexpr const char* kClass = "cortex-m4-256k";
constexpr int kOffline = static_cast<int>(update::Presence::kOffline);
constexpr int kOnline = static_cast<int>(update::Presence::kOnline);

std::string sha256(const std::string& b) {
  unsigned char d[32];
  crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(b.data()), b.size());
  return std::string(reinterpret_cast<char*>(d), 32);
}
const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// Named records and slots in memory (the contracts of ports.h, no power cuts here).
class MapRecords final : public da::RecordStore {
 public:
  long load(const char* name, uint8_t* out, size_t capacity) override {
    auto it = records_.find(name);
    if (it == records_.end() || it->second.size() > capacity) return -1;
    std::memcpy(out, it->second.data(), it->second.size());
    return static_cast<long>(it->second.size());
  }
  bool save(const char* name, const uint8_t* data, size_t size) override {
    records_[name].assign(reinterpret_cast<const char*>(data), size);
    return true;
  }

 private:
  std::map<std::string, std::string> records_;
};

class MapSlots final : public da::SlotStore {
 public:
  bool begin_slot(int s) override { return (slot_[s].clear(), committed_[s] = false, true); }
  bool append_slot(int s, const uint8_t* d, size_t n) override {
    slot_[s].append(reinterpret_cast<const char*>(d), n);
    return true;
  }
  bool commit_slot(int s) override { return committed_[s] = true; }
  long slot_size(int s) override { return committed_[s] ? static_cast<long>(slot_[s].size()) : -1; }
  bool read_slot(int s, uint64_t off, uint8_t* out, size_t n) override {
    if (off + n > slot_[s].size()) return false;
    std::memcpy(out, slot_[s].data() + off, n);
    return true;
  }
  const uint8_t* map_slot(int s) override { return u8(slot_[s]); }
  long staging_size() override { return static_cast<long>(staging_.size()); }
  bool staging_append(uint64_t off, const uint8_t* d, size_t n) override {
    if (off != staging_.size()) return false;
    staging_.append(reinterpret_cast<const char*>(d), n);
    return true;
  }
  bool staging_read(uint64_t off, uint8_t* out, size_t n) override {
    if (off + n > staging_.size()) return false;
    std::memcpy(out, staging_.data() + off, n);
    return true;
  }
  bool staging_clear() override { return (staging_.clear(), true); }

 private:
  std::string slot_[2], staging_;
  bool committed_[2] = {};
};

class TestClock final : public da::Clock {
 public:
  uint64_t now_unix() override { return kNow; }
  uint64_t monotonic_ms() override {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }
};

// fleetd's side: a client on the server account that records what the device sends and
// answers its chunk requests from `payload`.
struct Server : mqtt::Handler {
  void on_message(const mqtt::Message& m) override {
    const std::string topic(m.topic, m.topic_size);
    received.push_back(
        {topic, std::string(reinterpret_cast<const char*>(m.payload), m.payload_size)});
    qos.push_back(m.qos);
    update::ChunkRequest r;
    if (topic == request_topic &&
        update::decode_chunk_request(m.payload, m.payload_size, &r).ok()) {
      requests.push_back(r);
      if (!answer || r.offset >= payload.size()) return;
      const size_t n = std::min<size_t>(r.length, payload.size() - r.offset);
      std::string chunk(update::kChunkHeaderBytes, '\0');
      update::encode_chunk_header(r.release, r.offset, reinterpret_cast<uint8_t*>(chunk.data()),
                                  chunk.size());
      chunk += payload.substr(r.offset, n);
      client->publish(chunk_topic.c_str(), u8(chunk), chunk.size(), 1, false, nullptr);
    }
  }
  void on_connected(bool) override { ++connected; }
  // The last payload received on `topic`, or "".
  std::string last(const std::string& topic) const {
    for (auto it = received.rbegin(); it != received.rend(); ++it) {
      if (it->first == topic) return it->second;
    }
    return "";
  }

  mqtt::MqttClient* client = nullptr;
  std::string request_topic, chunk_topic, payload;
  bool answer = true;
  int connected = 0;
  std::vector<std::pair<std::string, std::string>> received;
  std::vector<uint8_t> qos;
  std::vector<update::ChunkRequest> requests;
};

class FirmwareOutbox : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    account_ = tinyfleet::testing::test_devices(26, 1).front();
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fleet_ = ("fwob" + std::to_string(getpid()) + test).substr(0, update::kMaxNameBytes);
    client_id_ = account_.user + "-" + fleet_;
    device_options_ = tinyfleet::firmware_test::device_client_options(client_id_, account_);
    server_user_ = require_env("TINYFLEET_MQTT_SERVER_USER");
    server_password_ = require_env("TINYFLEET_MQTT_SERVER_PASSWORD");
    server_id_ = "srv-" + fleet_;
    server_options_.connect.client_id = server_id_.c_str();
    server_options_.connect.username = server_user_.c_str();
    server_options_.connect.password = server_password_.c_str();
    server_tcp_ = transport();
    server_client_ = std::make_unique<mqtt::StaticMqttClient<16384, 16384>>(*server_tcp_, server_);
    server_.client = server_client_.get();
    server_.request_topic = topic(TopicKind::kChunkRequest);
    server_.chunk_topic = topic(TopicKind::kChunk);
    server_client_->start(server_options_);
    ASSERT_TRUE(run([&] { return server_.connected == 1; }));
    for (TopicKind k : {TopicKind::kChunkRequest, TopicKind::kStatus, TopicKind::kTelemetry,
                        TopicKind::kPresence}) {
      server_client_->subscribe(topic(k).c_str(), 1, nullptr);
    }
  }
  void TearDown() override {
    if (!keys_.empty()) std::filesystem::remove_all(keys_);
    for (TopicKind k : {TopicKind::kOffer, TopicKind::kStatus, TopicKind::kPresence}) {
      server_client_->publish(topic(k).c_str(), nullptr, 0, 1, true, nullptr);
    }
    server_client_->disconnect();
  }
  std::string topic(TopicKind kind) const {
    char out[update::kMaxTopicBytes];
    EXPECT_TRUE(
        update::device_topic(fleet_.c_str(), account_.user.c_str(), kind, out, sizeof out).ok());
    return out;
  }
  std::unique_ptr<TcpTransport> transport() {
    return std::make_unique<TcpTransport>(require_env("TINYFLEET_MQTT_HOST"),
                                          std::stoi(require_env("TINYFLEET_MQTT_PORT")));
  }
  // Polls the server, the outbox (and with it the agent) until `done`.
  bool run(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    return tinyfleet::firmware_test::poll_until(
        [&] {
          server_client_->poll();
          if (outbox_) outbox_->poll();
        },
        done, limit);
  }
  // The device: v1 installed at the factory, booted, its outbox connected.
  template <size_t kRx>
  StaticMqttOutbox<1024, kRx>& start_device(const std::string& root_public_key) {
    auto box =
        std::make_unique<StaticMqttOutbox<1024, kRx>>(*device_tcp_, workspace_, sizeof workspace_);
    auto& ref = *box;
    EXPECT_TRUE(box->configure(fleet_.c_str(), account_.user.c_str()));
    config_.fleet = fleet_.c_str();
    config_.device_class = kClass;
    config_.device_id = account_.user.c_str();
    root_ = root_public_key;
    config_.root_public_key = u8(root_);
    config_.probation_inferences = 0;
    agent_ =
        std::make_unique<da::UpdateAgent>(config_, records_, slots_, clock_, *box, verifier_, sha_,
                                          active_, candidate_, workspace_, sizeof workspace_);
    const std::string v1 = tinyfleet::firmware_test::fixture_artifact(1);
    EXPECT_TRUE(agent_->install_factory(u8(v1), v1.size()));
    EXPECT_TRUE(agent_->boot());
    box->attach(agent_.get());
    box->start(device_options_);
    outbox_ = std::move(box);
    return ref;
  }
  // A fresh folder for this test's fleet keys (removed at the end).
  const std::string& keys_dir() {
    keys_ = (std::filesystem::temp_directory_path() / (fleet_ + "-keys")).string();
    std::filesystem::remove_all(keys_);
    return keys_;
  }
  // The last status the device published (a default one before any).
  update::StatusMessage status() {
    update::StatusMessage s;
    const std::string b = server_.last(topic(TopicKind::kStatus));
    if (!update::decode_status(u8(b), b.size(), &s).ok()) s = update::StatusMessage{};
    return s;
  }
  // The last presence the broker passed on; -1 before any.
  int presence() {
    update::PresenceMessage p;
    const std::string b = server_.last(topic(TopicKind::kPresence));
    if (!update::decode_presence(u8(b), b.size(), &p).ok()) return -1;
    return static_cast<int>(p.presence);
  }

  tinyfleet::testing::MqttAccount account_;
  std::string fleet_, client_id_, server_user_, server_password_, server_id_, root_, keys_;
  mqtt::ClientOptions device_options_, server_options_;
  std::unique_ptr<TcpTransport> server_tcp_, device_tcp_ = transport();
  Server server_;
  std::unique_ptr<mqtt::StaticMqttClient<16384, 16384>> server_client_;
  std::unique_ptr<MqttOutbox> outbox_;
  da::AgentConfig config_;
  MapRecords records_;
  MapSlots slots_;
  TestClock clock_;
  update::SodiumVerifier verifier_;
  update::SodiumSha256 sha_;
  alignas(16) uint8_t arena_a_[16384] = {}, arena_b_[16384] = {};
  da::KernelsRunner active_{arena_a_, sizeof arena_a_}, candidate_{arena_b_, sizeof arena_b_};
  alignas(8) uint8_t workspace_[32768] = {};  // the delta workspace, lent for offers
  std::unique_ptr<da::UpdateAgent> agent_;
};

// An offer of release kRelease for this test's device, based on v1.
update::ManifestFields manifest_for(const std::string& fleet, const std::string& device,
                                    const std::string& v1) {
  update::ManifestFields f;
  f.fleet = fleet;
  f.device_class = kClass;
  f.device_id = device;
  f.model = "digits";
  f.model_version = 2;
  f.release_seq = kRelease;
  f.base_sha256 = sha256(v1);
  f.codec = update::DeltaCodec_TensorRange;
  f.expires_at = kNow + 3600;
  f.class_histogram = std::vector<float>(10, 0.1f);
  return f;
}

TEST_F(FirmwareOutbox, StreamsASignedOfferThroughASmallBufferAndInstallsItsDelta) {
  const std::string& keys = keys_dir();
  auto key = update::init_keys(keys, kNow, 30);
  ASSERT_TRUE(key);
  const auto root = update::load_root_public_key(keys);
  ASSERT_TRUE(root);
  namespace ft = tinyfleet::firmware_test;
  const std::string v1 = ft::fixture_artifact(1), v2 = ft::fixture_artifact(2);
  const std::string input = ft::fixture_input(), out2 = ft::run_on_host(v2, input);
  auto delta = update::encode_tensor_range(v1, v2, update::artifact_segments(v1),
                                           update::artifact_segments(v2), update::DeltaOptions{});
  ASSERT_TRUE(delta);
  update::ManifestFields f = manifest_for(fleet_, account_.user, v1);
  f.target_sha256 = sha256(v2);
  f.target_size = v2.size();
  f.codec = delta->codec;
  f.payload_sha256 = sha256(delta->payload);
  f.payload_size = delta->payload.size();
  f.chunk_size = 64 * 1024;  // fleetd's default: more than the device's buffer takes
  f.self_tests = {{input, out2}, {input, out2}, {input, out2}};
  const std::string offer = update::sign_offer(f, *key);
  server_.payload = delta->payload;
  constexpr size_t kRx = 256;
  ASSERT_GT(offer.size(), 3 * kRx);  // it cannot arrive whole: it must stream
  server_client_->publish(topic(TopicKind::kOffer).c_str(), u8(offer), offer.size(), 1, true,
                          nullptr);

  auto& box = start_device<kRx>(*root);
  ASSERT_TRUE(run([&] { return agent_->state() == da::UpdateState::kCommitted; }))
      << "state " << update::to_string(agent_->state()) << ", reason " << agent_->record().reason
      << ", offers " << box.counters().offers << ", requests " << server_.requests.size()
      << ", dropped " << box.client().counters().dropped;
  EXPECT_EQ(box.counters().streamed_offers, 1u);
  EXPECT_EQ(box.client().counters().dropped, 0u);
  EXPECT_EQ(agent_->record().installed_release, kRelease);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(agent_->record().installed_sha256), 32),
            sha256(v2));
  // Every request asked for what fits the 256-byte receive buffer at most, framed as
  // chunk_framing.h says, for the offered release.
  ASSERT_FALSE(server_.requests.empty());
  for (const auto& r : server_.requests) {
    EXPECT_EQ(r.release, kRelease);
    EXPECT_LE(r.length, box.max_chunk_bytes());
  }
  EXPECT_EQ(server_.requests.front().offset, 0u);
  EXPECT_EQ(server_.requests.front().length,
            std::min<uint32_t>(box.max_chunk_bytes(), delta->payload.size()));
  // The retained status says so (QoS 1), and the device is online.
  ASSERT_TRUE(run([&] { return status().release == kRelease; }));
  const auto s = status();
  EXPECT_EQ(s.state, da::UpdateState::kCommitted);
  EXPECT_TRUE(s.has_artifact);
  EXPECT_EQ(std::string(s.device_class), kClass);
  EXPECT_EQ(presence(), kOnline);
  // The new model runs: the self-test's output again.
  std::string out(agent_->model().output_bytes(), '\0');
  ASSERT_TRUE(agent_->model().run(reinterpret_cast<const int8_t*>(input.data()),
                                  reinterpret_cast<int8_t*>(out.data())));
  EXPECT_EQ(out, out2);
}

TEST_F(FirmwareOutbox, ATamperedStreamedOfferIsRefusedAndTheOldModelKeepsRunning) {
  const std::string& keys = keys_dir();
  auto key = update::init_keys(keys, kNow, 30);
  ASSERT_TRUE(key);
  const std::string v1 = tinyfleet::firmware_test::fixture_artifact(1);
  update::ManifestFields f = manifest_for(fleet_, account_.user, v1);
  f.target_sha256 = std::string(32, 'T');
  f.target_size = 1000;
  f.payload_sha256 = std::string(32, 'P');
  f.payload_size = 100;
  f.chunk_size = 1024;
  f.self_tests = {{std::string(400, 'i'), std::string(10, 'o')}};
  std::string offer = update::sign_offer(f, *key);
  offer[offer.size() / 2] ^= 0x01;  // in the manifest (the self-test input): signed bytes
  server_client_->publish(topic(TopicKind::kOffer).c_str(), u8(offer), offer.size(), 1, true,
                          nullptr);
  auto& box = start_device<512>(*update::load_root_public_key(keys));
  ASSERT_TRUE(run([&] { return status().event == update::StatusEvent::kOfferRefused; }));
  EXPECT_EQ(box.counters().streamed_offers, 1u);
  EXPECT_NE(status().refusal, update::OfferStatus::kOk);
  EXPECT_EQ(agent_->state(), da::UpdateState::kIdle);
  EXPECT_TRUE(agent_->model_ready());
  EXPECT_EQ(agent_->record().installed_release, 0u);
  EXPECT_TRUE(server_.requests.empty());  // nothing downloaded
}

TEST_F(FirmwareOutbox, AsksForChunksThatFitItsReceiveBufferAndSendsTelemetryAtQos0) {
  auto& box = start_device<512>(std::string(32, '\0'));
  ASSERT_TRUE(run([&] { return box.client().state() == mqtt::ClientState::kConnected; }));
  // fixed header (3) + topic (2 + length) + packet id (2) + chunk header (20)
  EXPECT_EQ(box.max_chunk_bytes(), 512 - 3 - 2 - topic(TopicKind::kChunk).size() - 2 - 20);
  server_.answer = false;
  ASSERT_TRUE(box.request_chunk(42, 1000, 60000));
  ASSERT_TRUE(run([&] { return !server_.requests.empty(); }));
  EXPECT_EQ(server_.requests[0].release, 42u);
  EXPECT_EQ(server_.requests[0].offset, 1000u);
  EXPECT_EQ(server_.requests[0].length, box.max_chunk_bytes());
  // A chunk of exactly that size arrives whole (not skipped) and reaches the agent.
  server_.payload.assign(2000, 'c');
  server_.answer = true;
  ASSERT_TRUE(box.request_chunk(42, 0, 60000));
  ASSERT_TRUE(run([&] { return box.counters().chunks == 1; }));
  EXPECT_EQ(box.client().counters().dropped, 0u);

  const std::string window = "telemetry window";
  ASSERT_TRUE(box.publish_telemetry(u8(window), window.size()));
  ASSERT_TRUE(run([&] { return server_.last(topic(TopicKind::kTelemetry)) == window; }));
  for (size_t i = 0; i < server_.received.size(); ++i) {
    if (server_.received[i].first == topic(TopicKind::kTelemetry)) {
      EXPECT_EQ(server_.qos[i], 0);
    }
  }
  // Hello on connect (on_reconnect announces), retained.
  EXPECT_EQ(status().event, update::StatusEvent::kHello);
}

// The reference firmware publishes its last window at QoS 0 and exits, and QEMU closes its
// socket at once: disconnect() waits for the broker to acknowledge "offline" (sent after
// the window, on the same connection), so the window has arrived when the link goes.
TEST_F(FirmwareOutbox, ADisconnectLetsTheLastWindowArriveBeforeTheLinkCloses) {
  auto& box = start_device<512>(std::string(32, '\0'));
  ASSERT_TRUE(run([&] { return presence() == kOnline; }));
  const std::string window = "the last window";
  ASSERT_TRUE(box.publish_telemetry(u8(window), window.size()));
  box.disconnect();
  device_tcp_->close();
  EXPECT_TRUE(box.close_acknowledged());
  EXPECT_EQ(box.client().state(), mqtt::ClientState::kStopped);
  ASSERT_TRUE(run([&] { return server_.last(topic(TopicKind::kTelemetry)) == window; }));
  ASSERT_TRUE(run([&] { return presence() == kOffline; }));
}

TEST_F(FirmwareOutbox, SaysOnlineWhenConnectedAndLeavesAWillThatSaysOffline) {
  auto& box = start_device<512>(std::string(32, '\0'));
  ASSERT_TRUE(run([&] { return presence() == kOnline; }));
  EXPECT_EQ(presence(), kOnline);
  const size_t before = server_.received.size();
  device_tcp_->close();  // the link drops without DISCONNECT: the broker sends the will
  ASSERT_TRUE(run([&] { return presence() == kOffline; }));
  EXPECT_GT(server_.received.size(), before);
  // The outbox reconnects: subscribed again, online again, announced again.
  ASSERT_TRUE(run([&] { return presence() == kOnline; }));
  EXPECT_EQ(box.client().counters().connects, 2u);
  // A clean disconnect says offline itself.
  box.disconnect();
  ASSERT_TRUE(run([&] { return presence() == kOffline; }));
}

}  // namespace
