// A signed delta update end to end over the real Mosquitto: fleetd's publisher offers
// digits_cnn -> digits_cnn_v2 (compiled by the optimizer) to a device account of the
// stack; the agent (Paho, file slots, the kernels runtime) downloads the delta in chunks,
// verifies, patches, self-tests on the runtime and commits.
#include <gtest/gtest.h>
#include <sodium.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "tinyfleet/device_agent/linux/file_stores.h"
#include "tinyfleet/device_agent/linux/kernels_runner.h"
#include "tinyfleet/device_agent/linux/mqtt_port.h"
#include "tinyfleet/device_agent/sodium_crypto.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/kernels/runtime/artifact_writer.h"
#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/server/delta_encoder.h"
#include "tinyfleet/server/offer_signer.h"
#include "tinyfleet/server/update_keys.h"
#include "tinyfleet/server/update_publisher.h"
#include "tinyfleet/testing/environment.h"

using namespace tinyfleet;
namespace fs = std::filesystem;
using tinyfleet::testing::fixture_path;
using tinyfleet::testing::require_env;

namespace {

std::string sha256(const std::string& s) {
  std::string d(32, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(d.data()),
                     reinterpret_cast<const unsigned char*>(s.data()), s.size());
  return d;
}

std::string compile(const char* model) {
  auto onnx = optimizer_service::read_file(fixture_path(std::string("models/") + model + ".onnx"));
  auto calib = optimizer_service::read_npz(fixture_path("data/digits_calib.npz"));
  EXPECT_TRUE(onnx && calib);
  auto c = optimizer_service::compile_model(*onnx, *calib, nullptr, {});
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return c ? c->artifact : "";
}

std::vector<server::ArtifactSegment> segments(const std::string& artifact) {
  std::vector<server::ArtifactSegment> out;
  for (const auto& s : kernels::tensor_segments(artifact))
    out.push_back({s.name, s.offset, s.size});
  return out;
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

TEST(MqttUpdate, AFineTunedModelArrivesAsASignedDeltaAndCommits) {
  ASSERT_GE(sodium_init(), 0);
  std::istringstream accounts(require_env("TINYFLEET_MQTT_TEST_DEVICES"));
  std::string account;
  accounts >> account;
  const std::string device = account.substr(0, account.find(':'));
  const std::string password = account.substr(account.find(':') + 1);
  const std::string uri =
      "tcp://" + require_env("TINYFLEET_MQTT_HOST") + ":" + require_env("TINYFLEET_MQTT_PORT");
  const std::string fleet = "e2e" + std::to_string(getpid());
  const fs::path dir = fs::temp_directory_path() / ("tf-mqtt-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "device");
  WallClock clock;
  auto key = server::init_keys((dir / "keys").string(), clock.now_unix(), 30);
  ASSERT_TRUE(key) << key.error().message;
  const std::string root = server::load_root_public_key((dir / "keys").string()).value();

  const std::string base = compile("digits_cnn");
  const std::string target = compile("digits_cnn_v2");
  ASSERT_FALSE(base.empty() || target.empty());
  auto delta = server::encode_best(base, target, segments(base), segments(target), {});
  ASSERT_TRUE(delta) << delta.error().message;
  std::printf("artifact %zu B, delta payload %zu B (codec %d)\n", target.size(),
              delta->payload.size(), static_cast<int>(delta->codec));
  EXPECT_LT(delta->payload.size(), target.size());

  // A self-test vector from the target on the runtime: 64 int8 pixels in, 10 logits out.
  device_agent::linux_port::KernelsRunner reference;
  std::vector<uint8_t> aligned(target.size() + 16);
  auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(aligned.data()) + 15) &
                                       ~uintptr_t{15});
  std::memcpy(a, target.data(), target.size());
  const char* why = "";
  ASSERT_TRUE(reference.load(a, target.size(), &why)) << why;
  std::string input(reference.input_bytes(), '\0');
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<char>((i * 37) % 200 - 100);
  std::string expected(reference.output_bytes(), '\0');
  ASSERT_TRUE(reference.run(reinterpret_cast<const int8_t*>(input.data()),
                            reinterpret_cast<int8_t*>(expected.data())));

  server::ManifestFields f;
  f.fleet = fleet;
  f.device_class = "cortex-m4-256k";
  f.model = "digits";
  f.model_version = 2;
  f.release_seq = 1;
  f.target_sha256 = sha256(target);
  f.target_size = target.size();
  f.base_sha256 = sha256(base);
  f.codec = delta->codec;
  f.payload_sha256 = sha256(delta->payload);
  f.payload_size = delta->payload.size();
  f.chunk_size = 256;
  f.expires_at = clock.now_unix() + 3600;
  f.self_tests = {{input, expected}};

  server::UpdatePublisher publisher(uri, require_env("TINYFLEET_MQTT_SERVER_USER"),
                                    require_env("TINYFLEET_MQTT_SERVER_PASSWORD"),
                                    "fleetd-test-" + std::to_string(getpid()));
  ASSERT_TRUE(publisher.start());

  device_agent::linux_port::FileRecordStore records((dir / "device").string());
  device_agent::linux_port::FileSlotStore slots((dir / "device").string());
  device_agent::linux_port::KernelsRunner runner_a, runner_b;
  device_agent::linux_port::MqttAgentPort port(uri, fleet, device, password);
  device_agent::SodiumVerifier verifier;
  device_agent::SodiumSha256 sha;
  device_agent::AgentConfig config;
  config.fleet = fleet.c_str();
  config.device_id = device.c_str();
  config.device_class = "cortex-m4-256k";
  config.root_public_key = reinterpret_cast<const uint8_t*>(root.data());
  config.window_log = 17;
  std::vector<uint8_t> workspace(device_agent::DeltaDecoder::workspace_size(config.window_log));
  device_agent::UpdateAgent agent(config, records, slots, clock, port, verifier, sha, runner_a,
                                  runner_b, workspace.data(), workspace.size());
  ASSERT_TRUE(agent.install_factory(reinterpret_cast<const uint8_t*>(base.data()), base.size()));
  ASSERT_TRUE(agent.boot());
  port.attach(&agent);
  ASSERT_TRUE(port.connect());

  ASSERT_TRUE(publisher.offer(fleet, device, 1, server::sign_offer(f, *key), delta->payload));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (agent.state() != device_agent::UpdateState::kCommitted &&
         agent.state() != device_agent::UpdateState::kRolledBack &&
         std::chrono::steady_clock::now() < deadline) {
    port.pump(100);
  }
  ASSERT_EQ(agent.state(), device_agent::UpdateState::kCommitted) << agent.record().reason;
  EXPECT_EQ(agent.record().installed_release, 1u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(agent.record().installed_sha256), 32),
            sha256(target));
  const uint64_t chunks = (delta->payload.size() + 255) / 256;
  EXPECT_EQ(publisher.chunks_served(), chunks);
  std::printf("chunks %llu, bytes through the broker %llu (full artifact %zu B)\n",
              static_cast<unsigned long long>(publisher.chunks_served()),
              static_cast<unsigned long long>(publisher.bytes_served()), target.size());
  // The new model runs on the device's runtime: the self-test output again.
  std::string out(agent.model().output_bytes(), '\0');
  ASSERT_TRUE(agent.model().run(reinterpret_cast<const int8_t*>(input.data()),
                                reinterpret_cast<int8_t*>(out.data())));
  EXPECT_EQ(out, expected);
  publisher.stop();
  fs::remove_all(dir);
}

}  // namespace
