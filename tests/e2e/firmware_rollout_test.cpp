// Firmware devices in a real rollout (issue 18's acceptance test): a private fleetd on the
// stack's PostgreSQL and Mosquitto, 10 fleet-sim devices and 2 reference-firmware devices
// (Cortex-M4 under QEMU, deploy/local/run-firmware-devices.sh) of class cortex-m4-256k,
// all provisioned by fleetctl. digits_cnn v1 reaches all 12 (the firmware starts with no
// model), v2 follows (the firmware installs it as a TensorRange delta: the payload it
// asked for is a fraction of the artifact), the firmware's telemetry windows are stored
// in PostgreSQL, and v3 (trained on shuffled labels) fails its accuracy gate (the
// firmware's probes are labelled digits it carries) and is rolled back: both firmware
// devices run v2 again. Then one firmware device is stopped and started again on the same
// flash file: it boots the v2 it had committed (its SHA-256 checked) and reports it to
// fleetd without asking for a byte. The image is firmware_reference_build's (ctest fixture).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "fleetd_process.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/scratch_database.h"
#include "tinyfleet/testing/stack_fleetd.h"
#include "tinyfleet/update/update_keys.h"

namespace tinyfleet::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kClass = "cortex-m4-256k";
const char* const kFirmware[] = {"fw-0001", "fw-0002"};

class FirmwareRollout : public ::testing::Test {
 protected:
  void SetUp() override {
#ifndef TINYFLEET_REFERENCE_FIRMWARE_ELF
    GTEST_SKIP() << "qemu-system-arm or arm-none-eabi-g++ missing: no firmware devices";
#else
    elf_ = TINYFLEET_REFERENCE_FIRMWARE_ELF;
    ASSERT_TRUE(fs::exists(elf_)) << elf_ << ": run the ctest firmware_reference_build first";
#endif
    dir_ = fs::temp_directory_path() / ("tf-fwe2e-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const auto now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
    ASSERT_TRUE(update::init_keys((dir_ / "keys").string(), now, 30));
    fleetd_ = std::make_unique<FleetdProcess>(
        scratch_.uri(), admin_,
        std::map<std::string, std::string>{
            {"mqtt.port", require_env("TINYFLEET_MQTT_TLS_PORT")},
            {"mqtt.ca_file", broker_ca_file()},
            {"mqtt.user", require_env("TINYFLEET_MQTT_SERVER_USER")},
            {"mqtt.password", require_env("TINYFLEET_MQTT_SERVER_PASSWORD")},
            {"mqtt.share_group", "fwe2e" + std::to_string(getpid())},
            {"keys.dir", (dir_ / "keys").string()},
            {"keys.root_public_key_file", (dir_ / "keys" / "root.pub").string()},
            {"rollouts.tick_ms", "200"},
            {"gates.max_looks", "6"},
            {"gates.max_wait_seconds", "30"}});
    ASSERT_NO_FATAL_FAILURE(fleetd_->start());
  }

  void TearDown() override {
    if (!dir_.empty()) {
      run_command(std::string(TINYFLEET_SOURCE_DIR) +
                  "/deploy/local/run-firmware-devices.sh stop --dir " + (dir_ / "fw").string());
    }
    if (sim_ > 0) {
      kill(sim_, SIGTERM);
      int st = 0;
      waitpid(sim_, &st, 0);
    }
    fleetd_.reset();
    if (HasFailure()) {
      for (const char* id : kFirmware) std::printf("--- %s\n%s\n", id, firmware_log(id).c_str());
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  CommandResult fleetctl(const std::string& args) {
    return run_fleetctl(fleetd_->port(), admin_, args, elapsed());
  }

  void start_sim(const std::string& creds) {
    sim_ = fork();
    if (sim_ == 0) {
      const std::string broker = tls_broker_uri(true), ca = broker_ca_file();
      const std::string log = (dir_ / "sim.log").string();
      std::freopen(log.c_str(), "w", stdout);
      execl(TINYFLEET_FLEET_SIM, "fleet-sim", "--broker", broker.c_str(), "--ca", ca.c_str(),
            "--class", kClass, "--credentials", creds.c_str(), "--root-key",
            (dir_ / "keys" / "root.pub").c_str(), "--data",
            fixture_path("data/digits_val.npz").c_str(), "--rate", "2", "--window", "2",
            "--probe-every", "1", "--state", (dir_ / "sim").c_str(), nullptr);
      _exit(127);
    }
  }

  // run-firmware-devices.sh start for the lines of fw-creds after `skip` (count 0: all).
  CommandResult start_firmware(int skip, int count) {
    return run_command(
        std::string(TINYFLEET_SOURCE_DIR) + "/deploy/local/run-firmware-devices.sh start --elf " +
        elf_ + " --credentials " + (dir_ / "fw-creds").string() + " --root-key " +
        (dir_ / "keys" / "root.pub").string() + " --dir " + (dir_ / "fw").string() + " --port " +
        require_env("TINYFLEET_MQTT_DEVICE_PORT") + " --rate-ms 200 --window-s 2 --skip " +
        std::to_string(skip) + " --count " + std::to_string(count) + " 2>&1");
  }

  std::string firmware_log(const std::string& id) {
    std::ifstream in(dir_ / "fw" / id / "firmware.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // device -> (state, release) in a rollout.
  std::map<std::string, std::pair<std::string, int64_t>> devices_of(const std::string& name) {
    auto out = rollout_device_states(scratch_.db(), name);
    EXPECT_TRUE(out);
    return out ? *out : std::map<std::string, std::pair<std::string, int64_t>>{};
  }

  std::string running(const std::string& device) {
    auto rows = scratch_.db().transact([&](pqxx::work& w) {
      return w
          .exec_params1("SELECT COALESCE(current_artifact_sha256, '') FROM devices WHERE id = $1",
                        device)[0]
          .as<std::string>();
    });
    return rows ? *rows : "";
  }

  // (sha256, size) of model version `version` for the class.
  std::pair<std::string, int64_t> artifact(int version) {
    auto rows = scratch_.db().transact([&](pqxx::work& w) {
      const auto row = w.exec_params1(
          "SELECT a.artifact_sha256, b.size_bytes FROM artifacts a JOIN model_versions v ON "
          "v.id = a.version_id JOIN blobs b ON b.sha256 = a.artifact_sha256 "
          "WHERE v.version = $1 AND a.device_class = $2",
          version, kClass);
      return std::pair{row[0].as<std::string>(), row[1].as<int64_t>()};
    });
    return rows ? *rows : std::pair<std::string, int64_t>{};
  }

  // Waits until both firmware devices run `sha` (fleetd's view, from their status).
  bool firmware_runs(const std::string& sha, int seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (running(kFirmware[0]) == sha && running(kFirmware[1]) == sha) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return false;
  }

  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  const std::string admin_ = "tf_fwe2e_admin_secret_0123456789";
  std::string elf_;
  fs::path dir_;
  ScratchDatabase scratch_;
  std::unique_ptr<FleetdProcess> fleetd_;
  pid_t sim_ = -1;
};

TEST_F(FirmwareRollout, TwoFirmwareDevicesTakeV1ThenTheV2DeltaAndReturnToV2AfterAFailedGate) {
  auto r = fleetctl(std::string("classes import ") + TINYFLEET_DEVICE_CLASS_CATALOG);
  ASSERT_EQ(r.exit, 0) << r.out;
  for (const auto& [prefix, n] : {std::pair{"sim-", 10}, std::pair{"fw-", 2}}) {
    r = fleetctl("devices provision --count " + std::to_string(n) + " --prefix " + prefix +
                 " --class " + kClass + " --tags fwe2e --credentials-out " +
                 (dir_ / (std::string(prefix) + "creds")).string());
    ASSERT_EQ(r.exit, 0) << r.out;
  }
  ASSERT_EQ(fleetctl("models create digits").exit, 0);
  const std::string data = " --calibration " + fixture_path("data/digits_calib.npz") +
                           " --validation " + fixture_path("data/digits_val.npz");
  for (const char* m : {"digits_cnn", "digits_cnn_v2", "digits_cnn_badlabels"}) {
    r = fleetctl("versions create digits --onnx " +
                 fixture_path(std::string("models/") + m + ".onnx") + data + " --classes " +
                 kClass);
    ASSERT_EQ(r.exit, 0) << r.out;
  }
  start_sim((dir_ / "sim-creds").string());
  r = start_firmware(0, 0);
  ASSERT_EQ(r.exit, 0) << r.out;
  std::printf("[%5.1fs] %s", elapsed(), r.out.c_str());

  // v1: the devices' first model (the firmware's as a delta from nothing).
  const std::string reporting = "failure_rate <= 0.05 && min_reporting >= 0.9";
  r = fleetctl(
      "rollouts create v1 --model digits --version 1 --tags fwe2e --phases 100:1 "
      "--rate 6000 --gates '" +
      reporting + "' --watch");
  ASSERT_EQ(r.exit, 0) << r.out;
  const auto v1 = artifact(1), v2 = artifact(2);
  ASSERT_TRUE(firmware_runs(v1.first, 30)) << "the firmware devices do not run v1";

  // v2: a TensorRange delta from v1.
  r = fleetctl(
      "rollouts create v2 --model digits --version 2 --tags fwe2e --phases 100:1 "
      "--rate 6000 --gates '" +
      reporting + "' --watch");
  ASSERT_EQ(r.exit, 0) << r.out;
  const auto in_v2 = devices_of("v2");
  ASSERT_EQ(in_v2.size(), 12u);
  for (const auto& [id, d] : in_v2) EXPECT_EQ(d.first, "updated") << id;
  ASSERT_TRUE(firmware_runs(v2.first, 30)) << "the firmware devices do not run v2";
  for (const char* id : kFirmware) {
    // "update: release R, state Committed, reason ""; payload N B asked for release R
    // (artifact M B)": what the device downloaded for v2's release against its size.
    const int64_t release = in_v2.at(id).second;
    const std::regex line("update: release " + std::to_string(release) +
                          ", state Committed, reason \"\"; payload ([0-9]+) B asked for release " +
                          std::to_string(release) + " \\(artifact ([0-9]+) B\\)");
    const std::string log = firmware_log(id);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(log, m, line)) << id << " never committed release " << release;
    const long payload = std::stol(m[1]), size = std::stol(m[2]);
    std::printf("%s: v2 (release %lld) from a %ld B delta payload, artifact %ld B\n", id,
                static_cast<long long>(release), payload, size);
    EXPECT_GT(payload, 0);
    EXPECT_LT(payload * 2, size) << id << " did not download a delta";
    EXPECT_EQ(size, v2.second);
  }

  // The firmware's telemetry as fleetd stored it: windows with measured active time.
  for (const char* id : kFirmware) {
    auto rows = scratch_.db().transact([&](pqxx::work& w) {
      return w.exec_params1(
          "SELECT count(*), COALESCE(sum(inferences), 0), COALESCE(avg(latency_p50_us), 0), "
          "COALESCE(sum(active_us), 0), COALESCE(avg(energy_uj), 0), "
          "COALESCE(avg(probe_accuracy), -1), COALESCE(sum(energy_measured_uj), 0) FROM telemetry "
          "WHERE device_id = $1",
          std::string(id));
    });
    ASSERT_TRUE(rows);
    const auto& t = *rows;
    std::printf(
        "%s telemetry: %lld windows, %lld inferences, p50 %.0f us, active %lld us, modelled "
        "energy %.2f uJ/inference, measured %.0f uJ (active time x 12 mW), probe accuracy "
        "%.2f\n",
        id, t[0].as<long long>(), t[1].as<long long>(), t[2].as<double>(), t[3].as<long long>(),
        t[4].as<double>(), t[6].as<double>(), t[5].as<double>());
    EXPECT_GT(t[0].as<long long>(), 0) << id << " has no telemetry";
    EXPECT_GT(t[3].as<long long>(), 0) << id << " measured no active time";
    EXPECT_GT(t[6].as<double>(), 0) << id << " measured no energy";
  }

  // Measured cycles (QEMU -icount shift=0): the same model gives the same figure on both
  // devices, to the timer's resolution (40 instructions, 0.5 us at the class's 80 MHz):
  // every v2 window's p50 latency, and the active time per inference.
  double lo = 1e18, hi = -1;
  for (const char* id : kFirmware) {
    // The gate may pass before a device's first v2 window (2 s) is stored.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    const auto v2_windows = [&] {
      auto n = scratch_.db().transact([&](pqxx::work& w) {
        return w
            .exec_params1(
                "SELECT count(*) FROM telemetry WHERE device_id = $1 AND artifact_sha256 = $2 "
                "AND inferences > 0",
                std::string(id), v2.first)[0]
            .as<long long>();
      });
      return n ? *n : 0;
    };
    while (v2_windows() == 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    auto rows = scratch_.db().transact([&](pqxx::work& w) {
      return w.exec_params1(
          "SELECT min(latency_p50_us), max(latency_p50_us), sum(active_us)::float8 / "
          "sum(inferences) FROM telemetry WHERE device_id = $1 AND artifact_sha256 = $2 AND "
          "inferences > 0",
          std::string(id), v2.first);
    });
    ASSERT_TRUE(rows && !(*rows)[0].is_null()) << id << " has no v2 telemetry";
    const double min = (*rows)[0].as<double>(), max = (*rows)[1].as<double>();
    std::printf("%s v2 windows: p50 latency %.0f..%.0f us, active %.1f us per inference\n", id, min,
                max, (*rows)[2].as<double>());
    lo = std::min(lo, min);
    hi = std::max(hi, max);
  }
  EXPECT_LE(hi - lo, 1.0) << "v2's p50 latency is not the same instruction count everywhere";

  // v3 (shuffled labels) fails its accuracy gate and is rolled back to v2.
  r = fleetctl(
      "rollouts create v3 --model digits --version 3 --tags fwe2e --phases 100:2 "
      "--rate 6000 --gates 'failure_rate <= 0.05 && min_reporting >= 0.9 && "
      "accuracy_drop <= 0.15' --watch");
  EXPECT_EQ(r.exit, 1) << r.out;
  EXPECT_NE(r.out.find("gate 'accuracy_drop <= 0.15' failed"), std::string::npos) << r.out;
  for (const auto& [id, d] : devices_of("v3")) EXPECT_EQ(d.first, "rolled_back") << id;
  EXPECT_TRUE(firmware_runs(v2.first, 60)) << "the firmware devices did not return to v2";
  // What each firmware device went through (its console's update lines).
  for (const char* id : kFirmware) {
    std::istringstream log(firmware_log(id));
    for (std::string l; std::getline(log, l);) {
      if (l.rfind("update: ", 0) == 0 || l.rfind("run: ", 0) == 0) {
        std::printf("%s %s\n", id, l.c_str());
      }
    }
  }

  // fw-0001 stopped and started again on its flash: it boots v2 from its slot and tells
  // fleetd, which is made to forget what it ran, so only the new report brings v2 back.
  // Stopped once v2 has passed probation (its last update line says so): a restart on
  // probation rolls back to the slot before, by design.
  const std::string first = kFirmware[0];
  const auto trusted = [&] {
    std::istringstream in(firmware_log(first));
    std::string last;
    for (std::string l; std::getline(in, l);) {
      if (l.rfind("update: ", 0) == 0) last = l;
    }
    return last.find("state Committed, reason \"probation passed\"") != std::string::npos;
  };
  const auto probation_end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!trusted() && std::chrono::steady_clock::now() < probation_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_TRUE(trusted()) << first << " did not pass probation on v2";
  r = run_command(std::string(TINYFLEET_SOURCE_DIR) + "/deploy/local/run-firmware-devices.sh " +
                  "stop --dir " + (dir_ / "fw").string() + " --device " + first + " 2>&1");
  ASSERT_EQ(r.exit, 0) << r.out;
  ASSERT_TRUE(scratch_.db().transact([&](pqxx::work& w) {
    w.exec_params0("UPDATE devices SET current_artifact_sha256 = NULL WHERE id = $1", first);
    return true;
  }));
  ASSERT_EQ(running(first), "");
  r = start_firmware(0, 1);
  ASSERT_EQ(r.exit, 0) << r.out;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (running(first) != v2.first && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_EQ(running(first), v2.first) << first << " did not report v2 after its restart";
  // "boot: release R, state S, model <sha256>": the model the agent checked and loaded.
  const std::string log = firmware_log(first);
  std::smatch boot;
  ASSERT_TRUE(std::regex_search(log, boot,
                                std::regex("boot: release ([0-9]+), state ([A-Za-z]+), model "
                                           "([0-9a-f]{64})")))
      << log;
  EXPECT_EQ(boot[3].str(), v2.first) << first << " booted another model";
  EXPECT_GT(std::stoll(boot[1]), 0) << first << " booted its factory state";
  // Its update lines (one a connect and an offer): it asked for no chunk.
  std::istringstream lines(log);
  int updates = 0;
  for (std::string l; std::getline(lines, l);) {
    if (l.rfind("update: ", 0) != 0) continue;
    ++updates;
    std::printf("%s after its restart: %s\n", first.c_str(), l.c_str());
    EXPECT_NE(l.find("chunk requests 0, chunks 0"), std::string::npos) << l;
  }
  EXPECT_GT(updates, 0) << first << " printed no update line (never connected)";
  std::printf("%s started again: %s\n", first.c_str(), boot[0].str().c_str());
  std::printf("[%5.1fs] done\n", elapsed());
}

}  // namespace
}  // namespace tinyfleet::testing
