// fleet-sim end to end over the real Mosquitto: the stack's device accounts run as one
// process of agents; the publisher offers a first model (full artifact, signed); every
// simulated device installs it, runs it over the digits data and publishes telemetry
// windows, whose input drift rises once the inputs switch to the drifted set. Once with
// each kind of session (fleet-sim --sessions): Paho over TLS (the Linux port), and the
// firmware's MQTT 3.1.1 client over the devices' plain listener (what the load bench runs).
#include <gtest/gtest.h>
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <mqtt/async_client.h>
#include <nlohmann/json.hpp>

#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/server/update_publisher.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/mqtt_accounts.h"
#include "tinyfleet/testing/update_fixtures.h"
#include "tinyfleet/update/delta_encoder.h"
#include "tinyfleet/update/offer_signer.h"
#include "tinyfleet/update/presence_message.h"
#include "tinyfleet/update/telemetry_message.h"
#include "tinyfleet/update/topics.h"
#include "tinyfleet/update/update_keys.h"

using namespace tinyfleet;
namespace fs = std::filesystem;
using json = nlohmann::json;
using tinyfleet::testing::fixture_path;
using tinyfleet::testing::require_env;
using tinyfleet::testing::sha256;

namespace {

uint64_t now_unix() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

class FleetSim : public ::testing::TestWithParam<std::string> {};

TEST_P(FleetSim, SimulatedDevicesInstallAModelAndReportTelemetry) {
  ASSERT_GE(sodium_init(), 0);
  const bool firmware = GetParam() == "firmware";
  // Over TLS: the watcher, the publisher and Paho devices all pin the stack's CA. Firmware
  // sessions speak plain MQTT 3.1.1 to the devices' listener of the same broker.
  const std::string broker = tinyfleet::testing::tls_broker_uri();
  const std::string ca = tinyfleet::testing::broker_ca_file();
  const std::string device_broker = firmware ? "tcp://" + require_env("TINYFLEET_MQTT_HOST") + ":" +
                                                   require_env("TINYFLEET_MQTT_DEVICE_PORT")
                                             : broker;
  const std::string fleet = "sim" + GetParam().substr(0, 1) + std::to_string(getpid());
  const fs::path dir = fs::temp_directory_path() / ("tf-fleet-sim-" + fleet);
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto key = update::init_keys((dir / "keys").string(), now_unix(), 30);
  ASSERT_TRUE(key);
  std::vector<std::string> ids;
  {
    std::ofstream creds(dir / "devices.txt");
    for (const auto& a : tinyfleet::testing::test_devices(firmware ? 30 : 12, 3)) {
      ids.push_back(a.user);
      creds << a.user << ' ' << a.password << '\n';
    }
  }

  auto onnx = optimizer_service::read_file(fixture_path("models/digits_cnn.onnx"));
  auto calib = optimizer_service::read_npz(fixture_path("data/digits_calib.npz"));
  auto val = optimizer_service::read_npz(fixture_path("data/digits_val.npz"));
  ASSERT_TRUE(onnx && calib && val);
  auto model = optimizer_service::compile_model(*onnx, *calib, &*val, {});
  ASSERT_TRUE(model);
  auto full = update::encode_full(model->artifact, {});
  ASSERT_TRUE(full);

  // Telemetry and presence, as the server sees them: the device from the topic, the
  // message decoded.
  std::mutex mu;
  std::map<std::string, std::vector<json>> windows;
  std::map<std::string, std::vector<update::Presence>> presence;
  mqtt::async_client watcher(broker, "watch-" + fleet, mqtt::create_options(MQTTVERSION_5));
  watcher.set_message_callback([&](mqtt::const_message_ptr m) {
    const std::string& topic = m->get_topic();
    const std::string& payload = m->get_payload();
    const auto* bytes = reinterpret_cast<const uint8_t*>(payload.data());
    update::TopicName name;
    ASSERT_TRUE(update::parse_topic(topic.data(), topic.size(), &name).ok()) << topic;
    if (name.kind == update::TopicKind::kPresence) {
      update::PresenceMessage p;
      ASSERT_TRUE(update::decode_presence(bytes, payload.size(), &p).ok());
      std::lock_guard<std::mutex> lock(mu);
      presence[std::string(name.device, name.device_size)].push_back(p.presence);
      return;
    }
    update::TelemetryMessage t;
    ASSERT_TRUE(update::decode_telemetry(reinterpret_cast<const uint8_t*>(payload.data()),
                                         payload.size(), &t)
                    .ok());
    uint64_t classified = 0, timed = 0;
    for (size_t i = 0; i < t.classes; ++i) classified += t.class_counts[i];
    for (uint32_t n : t.latency_hist) timed += n;
    json j = {{"release", t.release},         {"inferences", t.inferences},
              {"energy_uj", t.energy_uj},     {"input_drift", t.input_drift},
              {"probe_accuracy", nullptr},    {"version", t.version},
              {"classified", classified},     {"timed", timed},
              {"input_count", t.input_count}, {"channels", t.channels},
              {"active_us", t.active_us},     {"energy_modelled_uj", t.energy_modelled_uj},
              {"energy_measured_uj", nullptr}};
    if (t.flags & update::kTelemetryEnergyMeasured) j["energy_measured_uj"] = t.energy_measured_uj;
    if (t.probes > 0) j["probe_accuracy"] = static_cast<double>(t.probes_correct) / t.probes;
    std::lock_guard<std::mutex> lock(mu);
    windows[std::string(name.device, name.device_size)].push_back(j);
  });
  watcher.connect(tinyfleet::testing::server_account_options(true))->wait();
  for (auto kind : {update::TopicKind::kTelemetry, update::TopicKind::kPresence}) {
    char filter[update::kMaxTopicBytes];
    ASSERT_TRUE(update::topic_filter(fleet.c_str(), kind, filter, sizeof filter).ok());
    watcher.subscribe(filter, 1)->wait();
  }

  server::UpdatePublisher publisher(broker, require_env("TINYFLEET_MQTT_SERVER_USER"),
                                    require_env("TINYFLEET_MQTT_SERVER_PASSWORD"),
                                    "fleetd-" + fleet, 0, "g-" + fleet);
  publisher.set_ca_file(ca);
  ASSERT_TRUE(publisher.start());
  auto f = tinyfleet::testing::manifest_for("", model->artifact, *full, 1, 1024, now_unix() + 3600);
  f.fleet = fleet;
  f.model_version = 1;
  f.class_histogram = model->report.drift_baseline.class_histogram;
  f.channel_mean = model->report.drift_baseline.channel_mean;
  f.channel_std = model->report.drift_baseline.channel_std;
  f.modelled_cycles = 200000;
  for (const auto& id : ids) {
    f.device_id = id;  // each offer is bound to its device
    ASSERT_TRUE(publisher.offer(fleet, id, 1, update::sign_offer(f, *key), full->payload));
  }

  // A host energy counter (uJ) the devices read as their meter, growing 1,000 uJ every
  // 50 ms; replaced whole (rename), as a driver's file reads whole.
  const fs::path energy = dir / "energy_uj";
  std::atomic<bool> metering{true};
  auto write_energy = [&](uint64_t uj) {
    std::ofstream(dir / "energy_uj.tmp") << uj << "\n";
    fs::rename(dir / "energy_uj.tmp", energy);
  };
  write_energy(5000);

  // The devices start without a model; the retained offer is waiting for them.
  const std::string data = fixture_path("data/digits_val.npz");
  const std::string drifted = fixture_path("data/digits_drifted_val.npz");
  const std::string creds = (dir / "devices.txt").string(),
                    root = (dir / "keys" / "root.pub").string(), state = (dir / "state").string(),
                    report_file = (dir / "report.jsonl").string();
  std::vector<const char*> args = {"fleet-sim",
                                   "--sessions",
                                   GetParam().c_str(),
                                   "--broker",
                                   device_broker.c_str(),
                                   "--fleet",
                                   fleet.c_str(),
                                   "--class",
                                   "cortex-m4-256k",
                                   "--credentials",
                                   creds.c_str(),
                                   "--root-key",
                                   root.c_str(),
                                   "--data",
                                   data.c_str(),
                                   "--drifted",
                                   drifted.c_str(),
                                   "--drift-after",
                                   "7",
                                   "--rate",
                                   "40",
                                   "--window",
                                   "2",
                                   "--duration",
                                   "14",
                                   "--state",
                                   state.c_str(),
                                   "--report",
                                   report_file.c_str(),
                                   "--energy-file",
                                   energy.c_str()};
  if (!firmware) args.insert(args.end(), {"--ca", ca.c_str()});
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    execv(TINYFLEET_FLEET_SIM, const_cast<char* const*>(args.data()));
    _exit(127);
  }
  // Started after fork(): the child allocates before exec, so no thread may hold a lock.
  std::thread meter([&] {
    for (uint64_t uj = 6000; metering; uj += 1000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      write_energy(uj);
    }
  });
  int status = 0;
  const pid_t waited = waitpid(pid, &status, 0);
  metering = false;
  meter.join();
  ASSERT_EQ(waited, pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  publisher.stop();

  std::ifstream report(dir / "report.jsonl");
  std::string line;
  int reported = 0;
  while (std::getline(report, line)) {
    const auto r = json::parse(line);
    EXPECT_EQ(r["release"], 1) << line;
    EXPECT_EQ(r["state"], "Committed") << line;
    EXPECT_EQ(r["artifact"], [&] {
      std::string hex;
      for (unsigned char c : sha256(model->artifact)) {
        char b[3];
        std::snprintf(b, sizeof b, "%02x", c);
        hex += b;
      }
      return hex;
    }()) << line;
    ++reported;
  }
  EXPECT_EQ(reported, static_cast<int>(ids.size()));

  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the last presence messages
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& id : ids) {
    // Online while it ran; offline (said on the way out) after fleet-sim exited.
    const auto& p = presence[id];
    ASSERT_FALSE(p.empty()) << id;
    EXPECT_NE(std::find(p.begin(), p.end(), update::Presence::kOnline), p.end()) << id;
    EXPECT_EQ(p.back(), update::Presence::kOffline) << id;
    const auto& w = windows[id];
    ASSERT_GE(w.size(), 4u) << id << " sent " << w.size() << " windows";
    double clean_drift = 0, drifted_drift = 0, accuracy = 0;
    int clean_n = 0, drifted_n = 0;
    for (const auto& x : w) {
      EXPECT_EQ(x["release"], 1);
      EXPECT_GT(x["inferences"].get<int>(), 0);
      // 200,000 modelled cycles through the class's power model.
      EXPECT_GT(x["energy_uj"].get<double>(), 0);
      // Version 2: every inference classified and timed, its input summed, the run's
      // time measured, the window's energy counted by the meter and modelled.
      EXPECT_EQ(x["version"], 2);
      EXPECT_EQ(x["classified"], x["inferences"]);
      EXPECT_EQ(x["timed"], x["inferences"]);
      EXPECT_EQ(x["input_count"], x["inferences"]);
      EXPECT_GT(x["channels"].get<int>(), 0);
      EXPECT_GT(x["active_us"].get<uint64_t>(), 0u);
      EXPECT_NEAR(x["energy_modelled_uj"].get<double>(),
                  x["energy_uj"].get<double>() * x["inferences"].get<double>(),
                  1e-3 * x["energy_modelled_uj"].get<double>());
      ASSERT_FALSE(x["energy_measured_uj"].is_null()) << id;
      EXPECT_GT(x["energy_measured_uj"].get<double>(), 0) << id;
    }
    // The first windows saw clean inputs, the last ones drifted inputs.
    for (size_t i = 0; i < 2; ++i) {
      clean_drift += w[i]["input_drift"].get<double>();
      if (!w[i]["probe_accuracy"].is_null()) accuracy += w[i]["probe_accuracy"].get<double>();
      ++clean_n;
    }
    for (size_t i = w.size() - 2; i < w.size(); ++i) {
      drifted_drift += w[i]["input_drift"].get<double>();
      ++drifted_n;
    }
    EXPECT_GT(accuracy / clean_n, 0.85) << id;
    EXPECT_GT(drifted_drift / drifted_n, clean_drift / clean_n + 0.02) << id;
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Sessions, FleetSim, ::testing::Values("paho", "firmware"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
