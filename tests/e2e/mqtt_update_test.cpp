// A signed delta update end to end over the real Mosquitto: fleetd's publisher offers
// digits_cnn -> digits_cnn_v2 (compiled by the optimizer) to a device account of the
// stack; the agent (Paho, file slots, the kernels runtime) downloads the delta in chunks,
// verifies, patches, self-tests on the runtime and commits.
#include <gtest/gtest.h>
#include <sodium.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <thread>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "tinyfleet/device_agent/linux/file_stores.h"
#include "tinyfleet/device_agent/linux/kernels_runner.h"
#include "tinyfleet/device_agent/linux/mqtt_port.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/kernels/runtime/artifact_writer.h"
#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/server/update_publisher.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/private_broker.h"
#include "tinyfleet/testing/update_fixtures.h"
#include "tinyfleet/update/delta_encoder.h"
#include "tinyfleet/update/offer_signer.h"
#include "tinyfleet/update/sodium_crypto.h"
#include "tinyfleet/update/update_keys.h"

using namespace tinyfleet;
namespace fs = std::filesystem;
using tinyfleet::testing::fixture_path;
using tinyfleet::testing::require_env;

namespace {

std::string compile(const char* model) {
  auto onnx = optimizer_service::read_file(fixture_path(std::string("models/") + model + ".onnx"));
  auto calib = optimizer_service::read_npz(fixture_path("data/digits_calib.npz"));
  EXPECT_TRUE(onnx && calib);
  auto c = optimizer_service::compile_model(*onnx, *calib, nullptr, {});
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return c ? c->artifact : "";
}

std::vector<update::ArtifactSegment> segments(const std::string& artifact) {
  return update::artifact_segments(artifact);
}

struct WallClock : device_agent::Clock {
  uint64_t now_unix() override {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  }
  uint64_t monotonic_ms() override {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
  }
};

// Everything both tests need: keys, the two compiled artifacts, the delta, the signed
// manifest's fields, and the device's agent over the Linux port. Each test's publisher
// has a share group of its own ("g-" + fleet): tests running at the same time on the
// stack's broker must not answer (or swallow) each other's chunk requests.
struct Rig {
  // `account_index`: the test's own device account (tinyfleet::testing::test_devices).
  Rig(const std::string& broker_uri, uint32_t chunk_size, int account_index) : uri(broker_uri) {
    EXPECT_GE(sodium_init(), 0);
    const auto account = tinyfleet::testing::test_devices(account_index, 1).front();
    device = account.user;
    password = account.password;
    fleet = "e2e" + std::to_string(getpid()) + "c" + std::to_string(chunk_size);
    dir = fs::temp_directory_path() / ("tf-mqtt-" + fleet);
    fs::remove_all(dir);
    fs::create_directories(dir / "device");
    key = update::init_keys((dir / "keys").string(), clock.now_unix(), 30).value();
    root = update::load_root_public_key((dir / "keys").string()).value();
    base = compile("digits_cnn");
    target = compile("digits_cnn_v2");
    delta = update::encode_best(base, target, segments(base), segments(target), {}).value();
    // A self-test vector from the target on the runtime.
    std::vector<uint8_t> aligned(target.size() + 16);
    auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(aligned.data()) + 15) &
                                         ~uintptr_t{15});
    std::memcpy(a, target.data(), target.size());
    const char* why = "";
    EXPECT_TRUE(reference.load(a, target.size(), &why)) << why;
    input.assign(reference.input_bytes(), '\0');
    for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<char>((i * 37) % 200 - 100);
    expected.assign(reference.output_bytes(), '\0');
    EXPECT_TRUE(reference.run(reinterpret_cast<const int8_t*>(input.data()),
                              reinterpret_cast<int8_t*>(expected.data())));
    f = tinyfleet::testing::manifest_for(base, target, delta, 1, chunk_size,
                                         clock.now_unix() + 3600);
    f.fleet = fleet;
    f.device_id = device;
    f.self_tests = {{input, expected}};
    config.fleet = fleet.c_str();
    config.device_id = device.c_str();
    config.device_class = "cortex-m4-256k";
    config.root_public_key = reinterpret_cast<const uint8_t*>(root.data());
    config.window_log = 17;
    config.chunk_timeout_ms = 1000;
    workspace.resize(update::DeltaDecoder::workspace_size(config.window_log));
    records =
        std::make_unique<device_agent::linux_port::FileRecordStore>((dir / "device").string());
    slots = std::make_unique<device_agent::linux_port::FileSlotStore>((dir / "device").string());
    port = std::make_unique<device_agent::linux_port::MqttAgentPort>(uri, fleet, device, password);
    if (tls()) port->set_ca_file(tinyfleet::testing::broker_ca_file());
    agent = std::make_unique<device_agent::UpdateAgent>(config, *records, *slots, clock, *port,
                                                        verifier, sha, runner_a, runner_b,
                                                        workspace.data(), workspace.size());
    EXPECT_TRUE(agent->install_factory(reinterpret_cast<const uint8_t*>(base.data()), base.size()));
    EXPECT_TRUE(agent->boot());
    port->attach(agent.get());
  }
  ~Rig() { fs::remove_all(dir); }
  // fleetd's publisher (named `name`, `rate` bytes/s, 0 = unbounded) started, the device
  // connected, and the signed offer published; null if any step failed.
  std::unique_ptr<server::UpdatePublisher> start_update(const std::string& name, uint64_t rate) {
    auto publisher = std::make_unique<server::UpdatePublisher>(
        uri, require_env("TINYFLEET_MQTT_SERVER_USER"),
        require_env("TINYFLEET_MQTT_SERVER_PASSWORD"), name + fleet, rate, "g-" + fleet);
    if (tls()) publisher->set_ca_file(tinyfleet::testing::broker_ca_file());
    if (!publisher->start() || !port->connect()) return nullptr;
    if (!publisher->offer(fleet, device, 1, update::sign_offer(f, key), delta.payload)) {
      return nullptr;
    }
    return publisher;
  }
  bool tls() const { return uri.rfind("ssl://", 0) == 0; }
  // Pumps the port (`wait_ms` a time) until `done` or `seconds` have passed.
  void pump_until(const std::function<bool()>& done, int seconds, int wait_ms = 100) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (!done() && std::chrono::steady_clock::now() < deadline) port->pump(wait_ms);
  }
  // Pumps until `bytes` of the payload are staged (or the update ended).
  void download(long bytes) {
    pump_until([&] { return slots->staging_size() >= bytes || finished(); }, 30, 20);
  }
  bool finished() const {
    return agent->state() == device_agent::UpdateState::kCommitted ||
           agent->state() == device_agent::UpdateState::kRolledBack;
  }

  std::string uri, device, password, fleet, root, base, target, input, expected;
  fs::path dir;
  WallClock clock;
  update::TargetsKey key;
  update::Delta delta;
  update::ManifestFields f;
  device_agent::linux_port::KernelsRunner reference, runner_a, runner_b;
  update::SodiumVerifier verifier;
  update::SodiumSha256 sha;
  device_agent::AgentConfig config;
  std::vector<uint8_t> workspace;
  std::unique_ptr<device_agent::linux_port::FileRecordStore> records;
  std::unique_ptr<device_agent::linux_port::FileSlotStore> slots;
  std::unique_ptr<device_agent::linux_port::MqttAgentPort> port;
  std::unique_ptr<device_agent::UpdateAgent> agent;
};

// The stack's broker over TLS, both the publisher and the device pinning its CA.
std::string stack_broker() { return tinyfleet::testing::tls_broker_uri(); }

TEST(MqttUpdate, AFineTunedModelArrivesAsASignedDeltaAndCommits) {
  Rig rig(stack_broker(), 256, 9);
  std::printf("artifact %zu B, delta payload %zu B (codec %d)\n", rig.target.size(),
              rig.delta.payload.size(), static_cast<int>(rig.delta.codec));
  EXPECT_LT(rig.delta.payload.size(), rig.target.size());
  auto publisher = rig.start_update("fleetd-test-", 0);
  ASSERT_TRUE(publisher);
  rig.pump_until([&] { return rig.finished(); }, 30);
  ASSERT_EQ(rig.agent->state(), device_agent::UpdateState::kCommitted)
      << rig.agent->record().reason;
  EXPECT_EQ(rig.agent->record().installed_release, 1u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(rig.agent->record().installed_sha256), 32),
            tinyfleet::testing::sha256(rig.target));
  const uint64_t chunks = (rig.delta.payload.size() + 255) / 256;
  EXPECT_EQ(publisher->chunks_served(), chunks);
  std::printf("chunks %llu, bytes through the broker %llu (full artifact %zu B)\n",
              static_cast<unsigned long long>(publisher->chunks_served()),
              static_cast<unsigned long long>(publisher->bytes_served()), rig.target.size());
  // The new model runs on the device's runtime: the self-test output again.
  std::string out(rig.agent->model().output_bytes(), '\0');
  ASSERT_TRUE(rig.agent->model().run(reinterpret_cast<const int8_t*>(rig.input.data()),
                                     reinterpret_cast<int8_t*>(out.data())));
  EXPECT_EQ(out, rig.expected);
  publisher->stop();
}

TEST(MqttUpdate, ARateBoundPublisherStillDelivers) {
  Rig rig(stack_broker(), 256, 10);
  // 300 B/s with one second of burst (a chunk at once), then a chunk every ~0.9 s.
  auto publisher = rig.start_update("fleetd-rate-", 300);
  ASSERT_TRUE(publisher);
  const auto t0 = std::chrono::steady_clock::now();
  rig.pump_until([&] { return rig.finished(); }, 60);
  ASSERT_EQ(rig.agent->state(), device_agent::UpdateState::kCommitted)
      << rig.agent->record().reason;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("rate-bound: %llu requests deferred, %.1f s for %zu B\n",
              static_cast<unsigned long long>(publisher->requests_deferred()), seconds,
              rig.delta.payload.size());
  EXPECT_GT(publisher->requests_deferred(), 0u);
  // The payload at 300 B/s after a 300 B burst cannot take less than this.
  const double floor = (static_cast<double>(rig.delta.payload.size()) - 300.0) / 300.0;
  ASSERT_GT(floor, 0.5) << "the payload is too small to exercise the bound";
  EXPECT_GT(seconds, floor);
  publisher->stop();
}

TEST(MqttUpdate, ABrokerRestartMidDownloadResumes) {
  tinyfleet::testing::PrivateBroker broker;
  broker.start();
  Rig rig(broker.uri(), 16, 11);  // small chunks: a long download to interrupt
  const uint64_t chunks = (rig.delta.payload.size() + 15) / 16;
  ASSERT_GT(chunks, 40u);
  auto publisher = rig.start_update("fleetd-restart-", 0);
  ASSERT_TRUE(publisher);
  rig.download(20 * 16);
  ASSERT_EQ(rig.agent->state(), device_agent::UpdateState::kDownloading);
  const long before = rig.slots->staging_size();
  broker.stop();  // mid-download
  rig.port->pump(300);
  broker.start();
  rig.pump_until([&] { return rig.finished(); }, 60);
  ASSERT_EQ(rig.agent->state(), device_agent::UpdateState::kCommitted)
      << rig.agent->record().reason;
  EXPECT_GE(rig.slots->staging_size(), 0);
  const uint64_t twice = publisher->chunks_served() - chunks;
  std::printf("restart after %ld of %zu bytes: %llu chunks for %llu needed (%llu sent twice)\n",
              before, rig.delta.payload.size(),
              static_cast<unsigned long long>(publisher->chunks_served()),
              static_cast<unsigned long long>(chunks), static_cast<unsigned long long>(twice));
  EXPECT_LT(twice, 2u) << "the download restarted instead of resuming";
  publisher->stop();
}

// fleetd withdraws the offer mid-download (an empty retained message on the offer topic,
// UpdatePublisher::withdraw): the Linux port hands the empty offer to the agent, which
// abandons the download and never takes that release. A private broker (the account of
// ABrokerRestartMidDownloadResumes, on a broker of its own).
TEST(MqttUpdate, AWithdrawnOfferAbandonsTheDownload) {
  tinyfleet::testing::PrivateBroker broker;
  broker.start();
  Rig rig(broker.uri(), 16, 11);  // small chunks: the withdrawal lands mid-download
  auto publisher = rig.start_update("fleetd-withdraw-", 0);
  ASSERT_TRUE(publisher);
  rig.download(10 * 16);
  ASSERT_EQ(rig.agent->state(), device_agent::UpdateState::kDownloading);
  ASSERT_TRUE(publisher->withdraw(rig.fleet, rig.device));
  rig.pump_until([&] { return rig.agent->state() != device_agent::UpdateState::kDownloading; }, 30,
                 20);
  EXPECT_EQ(rig.agent->state(), device_agent::UpdateState::kIdle) << rig.agent->record().reason;
  EXPECT_STREQ(rig.agent->record().reason, "offer withdrawn by fleetd");
  EXPECT_EQ(rig.agent->record().failed_release, 1u);
  EXPECT_EQ(rig.agent->record().installed_release, 0u);
  publisher->stop();
}

}  // namespace
