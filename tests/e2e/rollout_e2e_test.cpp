// Staged rollouts end to end: real fleetd, PostgreSQL, Mosquitto, fleetctl and 200
// simulated devices of two classes. A good version reaches 100% although fleetd is
// killed (SIGKILL) and restarted in the middle of it; a bad version fails its accuracy
// gate at the canary and every canary device returns to the previous model; bad
// operator input is refused with a message and an exit code.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "fleetd_process.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/scratch_database.h"
#include "tinyfleet/testing/stack_fleetd.h"

namespace tinyfleet::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kPerClass = 100;

using Outcome = CommandResult;

class RolloutE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tf-e2e-" + std::to_string(getpid()));
    ASSERT_TRUE(fresh_keys_dir(dir_));
    group_ = "e2e" + std::to_string(getpid());
    auto settings = stack_fleetd_settings(dir_, group_);
    // Gates look every 6 s after the bake and decide within 30 s (the default spreads 12
    // looks over 4 hours).
    settings["gates.max_looks"] = "6";
    settings["gates.max_wait_seconds"] = "30";
    fleetd_ = std::make_unique<FleetdProcess>(scratch_.uri(), admin_, settings);
    ASSERT_NO_FATAL_FAILURE(fleetd_->start());
  }
  void TearDown() override {
    for (pid_t p : sims_) {
      kill(p, SIGTERM);
      int st = 0;
      waitpid(p, &st, 0);
    }
    fleetd_.reset();
    if (HasFailure()) {  // the fleet's own view of it
      for (const char* log : {"sim-m4.log", "sim-s3.log"}) {
        std::ifstream in(dir_ / log);
        std::string line;
        std::printf("--- %s\n", log);
        for (int i = 0; i < 60 && std::getline(in, line); ++i) std::printf("%s\n", line.c_str());
      }
    }
    fs::remove_all(dir_);
  }

  // fleetctl against the current fleetd; its exit code and what it printed.
  Outcome fleetctl(const std::string& args) {
    std::printf("[%5.1fs] fleetctl %s\n", elapsed(), args.substr(0, 60).c_str());
    std::fflush(stdout);
    const std::string cmd = "FLEETCTL_ENDPOINT=127.0.0.1:" + std::to_string(fleetd_->port()) +
                            " FLEETCTL_TOKEN=" + admin_ + " FLEETCTL_CONFIG=/nonexistent " +
                            TINYFLEET_FLEETCTL + " " + args + " 2>&1";
    return run_command(cmd);
  }

  void start_sim(const std::string& cls, const std::string& creds, const std::string& state) {
    const pid_t pid = fork();
    if (pid == 0) {
      // The devices' listener (client id = user name) over TLS, as a deployment's devices
      // use; fleetd's own connection is TLS too.
      const std::string broker = tinyfleet::testing::tls_broker_uri(true);
      const std::string ca = tinyfleet::testing::broker_ca_file();
      const std::string log = (dir_ / (state + ".log")).string();
      std::freopen(log.c_str(), "w", stdout);
      execl(TINYFLEET_FLEET_SIM, "fleet-sim", "--broker", broker.c_str(), "--ca", ca.c_str(),
            "--class", cls.c_str(), "--credentials", creds.c_str(), "--root-key",
            (dir_ / "keys" / "root.pub").c_str(), "--data",
            fixture_path("data/digits_val.npz").c_str(), "--rate", "2", "--window", "2",
            "--probe-every", "1", "--state", (dir_ / state).c_str(), "--report",
            (dir_ / (state + ".jsonl")).c_str(), nullptr);
      _exit(127);
    }
    sims_.push_back(pid);
  }

  // rollout_devices of a rollout: device -> (phase, state, release).
  std::map<std::string, std::tuple<int, std::string, int64_t>> devices_of(const std::string& r) {
    std::map<std::string, std::tuple<int, std::string, int64_t>> out;
    auto rows = scratch_.db().transact([&](pqxx::work& w) {
      return w.exec_params(
          "SELECT rd.device_id, rd.phase, rd.state, COALESCE(rd.release_seq, 0) FROM "
          "rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id WHERE r.name = $1",
          r);
    });
    EXPECT_TRUE(rows);
    for (const auto& row : *rows) {
      out[row[0].as<std::string>()] = {row[1].as<int>(), row[2].as<std::string>(),
                                       row[3].as<int64_t>()};
    }
    return out;
  }

  std::map<std::string, std::string> artifacts_of_devices() {
    std::map<std::string, std::string> out;
    auto rows = scratch_.db().transact([](pqxx::work& w) {
      return w.exec("SELECT id, COALESCE(current_artifact_sha256, '') FROM devices");
    });
    for (const auto& row : *rows) out[row[0].as<std::string>()] = row[1].as<std::string>();
    return out;
  }

  std::string artifact(int version, const std::string& cls) {
    auto rows = scratch_.db().transact([&](pqxx::work& w) {
      return w
          .exec_params1(
              "SELECT a.artifact_sha256 FROM artifacts a JOIN model_versions v ON v.id = "
              "a.version_id WHERE v.version = $1 AND a.device_class = $2",
              version, cls)[0]
          .as<std::string>();
    });
    return rows ? *rows : "";
  }

  void check_metrics();
  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  const std::string admin_ = "tf_e2e_admin_secret_0123456789";
  fs::path dir_;
  std::string group_;
  ScratchDatabase scratch_;
  std::unique_ptr<FleetdProcess> fleetd_;
  std::vector<pid_t> sims_;
};

TEST_F(RolloutE2E, StagedRolloutsSurviveAFleetdCrashAndABadVersionRollsBack) {
  const std::string cm4 = "cortex-m4-256k", s3 = "esp32s3-512k";
  auto r = fleetctl(std::string("classes import ") + TINYFLEET_DEVICE_CLASS_CATALOG);
  ASSERT_EQ(r.exit, 0) << r.out;
  for (const auto& [cls, prefix] : {std::pair{cm4, "m4-"}, std::pair{s3, "s3-"}}) {
    r = fleetctl("devices provision --count " + std::to_string(kPerClass) + " --prefix " + prefix +
                 " --class " + cls + " --tags e2e --credentials-out " +
                 (dir_ / (std::string(prefix) + "creds")).string());
    ASSERT_EQ(r.exit, 0) << r.out;
  }
  ASSERT_EQ(fleetctl("models create digits").exit, 0);
  const std::string data = " --calibration " + fixture_path("data/digits_calib.npz") +
                           " --validation " + fixture_path("data/digits_val.npz");
  for (const char* m : {"digits_cnn", "digits_cnn_v2", "digits_cnn_badlabels"}) {
    r = fleetctl("versions create digits --onnx " +
                 fixture_path(std::string("models/") + m + ".onnx") + data + " --classes " + cm4 +
                 "," + s3);
    ASSERT_EQ(r.exit, 0) << r.out;
  }
  // Version 4 is compiled for one class only.
  r = fleetctl("versions create digits --onnx " + fixture_path("models/digits_cnn_v2.onnx") + data +
               " --classes " + cm4);
  ASSERT_EQ(r.exit, 0) << r.out;

  start_sim(cm4, (dir_ / "m4-creds").string(), "sim-m4");
  start_sim(s3, (dir_ / "s3-creds").string(), "sim-s3");

  // Bad operator input: refused, named, with an exit code; nothing is created.
  const std::string gates = "failure_rate <= 0.05 && min_reporting >= 0.9 && accuracy_drop <= 0.15";
  r = fleetctl("rollouts create bad1 --model digits --version 9 --tags e2e");
  EXPECT_EQ(r.exit, 3) << r.out;
  EXPECT_NE(r.out.find("has no version 9"), std::string::npos) << r.out;
  r = fleetctl("rollouts create bad2 --model digits --version 4 --tags e2e");
  EXPECT_EQ(r.exit, 4) << r.out;
  EXPECT_NE(r.out.find("is not compiled for class 'esp32s3-512k' (100 selected devices)"),
            std::string::npos)
      << r.out;
  r = fleetctl(
      "rollouts create bad3 --model digits --version 1 --tags e2e --gates "
      "'accuracy_drop <= 0.05 && psi <'");
  EXPECT_EQ(r.exit, 4) << r.out;
  EXPECT_NE(r.out.find("gate clause 2 ('psi <'): '' is not a number"), std::string::npos) << r.out;
  r = fleetctl("rollouts create bad4 --model digits --version 1 --tags no-such-tag");
  EXPECT_EQ(r.exit, 4) << r.out;
  EXPECT_NE(r.out.find("matches 0 devices"), std::string::npos) << r.out;
  r = fleetctl("rollouts create bad5 --model digits --version 1 --phases 50:1,40:1");
  EXPECT_EQ(r.exit, 4) << r.out;
  r = fleetctl("rollouts list --json");
  EXPECT_EQ(r.out.find("bad"), std::string::npos) << r.out;

  // Version 1 to every device (their first model).
  r = fleetctl(
      "rollouts create v1 --model digits --version 1 --tags e2e --phases 100:1 --rate "
      "6000 --gates 'failure_rate <= 0.05 && min_reporting >= 0.9' --watch");
  ASSERT_EQ(r.exit, 0) << r.out;
  for (const auto& [id, d] : devices_of("v1")) EXPECT_EQ(std::get<1>(d), "updated") << id;

  // Version 2 in three phases (a canary of 20 devices: the gates' statistics need at
  // least gates.min_devices); fleetd is killed once phase 1 has started.
  r = fleetctl(
      "rollouts create v2 --model digits --version 2 --tags e2e --phases "
      "10:2,50:2,100:1 --rate 3000 --gates '" +
      gates + "'");
  ASSERT_EQ(r.exit, 0) << r.out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  bool killed = false;
  std::map<std::string, int64_t> release_before;
  while (!killed && std::chrono::steady_clock::now() < deadline) {
    int offered = 0;
    for (const auto& [id, d] : devices_of("v2")) offered += std::get<2>(d) != 0;
    if (offered > 30) {
      for (const auto& [id, d] : devices_of("v2")) {
        if (std::get<2>(d) != 0) release_before[id] = std::get<2>(d);
      }
      fleetd_->kill_hard();
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(killed) << "v2 never reached the middle" << fleetd_->log().substr(0, 20000);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ASSERT_NO_FATAL_FAILURE(fleetd_->start());
  r = fleetctl("rollouts watch v2");
  ASSERT_EQ(r.exit, 0) << r.out << fleetd_->log();
  const auto v2 = devices_of("v2");
  ASSERT_EQ(v2.size(), 2u * kPerClass);
  for (const auto& [id, d] : v2) {
    EXPECT_EQ(std::get<1>(d), "updated") << id;
    // Offered once: a device offered before the crash kept its release number.
    if (release_before.count(id)) {
      EXPECT_EQ(std::get<2>(d), release_before[id]) << id;
    }
  }
  auto now_running = artifacts_of_devices();
  for (const auto& [id, sha] : now_running) {
    EXPECT_EQ(sha, artifact(2, id.rfind("m4-", 0) == 0 ? cm4 : s3)) << id;
  }

  // Version 3 (shuffled labels) fails the accuracy gate at the canary.
  r = fleetctl(
      "rollouts create v3 --model digits --version 3 --tags e2e --phases "
      "10:2,50:2,100:1 --rate 3000 --gates '" +
      gates + "' --watch");
  EXPECT_EQ(r.exit, 1) << r.out;
  EXPECT_NE(r.out.find("gate 'accuracy_drop <= 0.15' failed in phase 0"), std::string::npos)
      << r.out;
  const auto v3 = devices_of("v3");
  int canary = 0;
  for (const auto& [id, d] : v3) {
    if (std::get<0>(d) == 0) {
      ++canary;
      EXPECT_EQ(std::get<1>(d), "rolled_back") << id;
    } else {
      EXPECT_EQ(std::get<1>(d), "pending") << id << " was offered beyond the canary";
    }
  }
  EXPECT_EQ(canary, 20);  // 10% of 200
  now_running = artifacts_of_devices();
  for (const auto& [id, sha] : now_running) {
    EXPECT_EQ(sha, artifact(2, id.rfind("m4-", 0) == 0 ? cm4 : s3)) << id << " is not on v2";
  }
  r = fleetctl("telemetry --rollout v3 --since 600 --bucket 5");
  EXPECT_EQ(r.exit, 0) << r.out;
  std::printf("%s\n", r.out.c_str());
  ASSERT_NO_FATAL_FAILURE(check_metrics());
}

// A rollout that gives devices their first model and is rolled back after its canary
// installed it: those devices get a signed "no model" offer (bound to each) and stop
// running the rejected model (status no_model, no artifact); the devices never offered
// it keep running nothing and never fetch it (issue 20 point 4, issue 19 point 6).
TEST_F(RolloutE2E, ARolledBackFirstModelLeavesItsDevicesOnNoModel) {
  const std::string cm4 = "cortex-m4-256k";
  auto r = fleetctl(std::string("classes import ") + TINYFLEET_DEVICE_CLASS_CATALOG);
  ASSERT_EQ(r.exit, 0) << r.out;
  r = fleetctl("devices provision --count 10 --prefix nm- --class " + cm4 +
               " --tags nomodel --credentials-out " + (dir_ / "nm-creds").string());
  ASSERT_EQ(r.exit, 0) << r.out;
  ASSERT_EQ(fleetctl("models create digits").exit, 0);
  r = fleetctl("versions create digits --onnx " + fixture_path("models/digits_cnn.onnx") +
               " --calibration " + fixture_path("data/digits_calib.npz") + " --validation " +
               fixture_path("data/digits_val.npz") + " --classes " + cm4);
  ASSERT_EQ(r.exit, 0) << r.out;
  start_sim(cm4, (dir_ / "nm-creds").string(), "sim-m4");
  // Phase 0 (20%: two devices) bakes for ten minutes: the operator aborts in it.
  r = fleetctl(
      "rollouts create first --model digits --version 1 --tags nomodel --phases "
      "20:600,100:1 --rate 6000");
  ASSERT_EQ(r.exit, 0) << r.out;
  auto canary_updated = [&] {
    int n = 0;
    for (const auto& [id, d] : devices_of("first")) n += std::get<1>(d) == "updated";
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (canary_updated() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(canary_updated(), 2) << fleetd_->log().substr(0, 20000);
  r = fleetctl("rollouts abort first");
  ASSERT_EQ(r.exit, 0) << r.out;
  r = fleetctl("rollouts watch first");
  std::printf("%s\n", r.out.c_str());
  int reverted = 0;
  for (const auto& [id, d] : devices_of("first")) {
    if (std::get<0>(d) == 0) {
      EXPECT_EQ(std::get<1>(d), "rolled_back") << id;
      ++reverted;
    } else {
      EXPECT_EQ(std::get<1>(d), "pending") << id;
    }
  }
  EXPECT_EQ(reverted, 2);
  for (const auto& [id, sha] : artifacts_of_devices()) EXPECT_EQ(sha, "") << id << " runs a model";
  auto statuses = scratch_.db().transact([](pqxx::work& w) {
    return w.exec("SELECT count(*) FROM devices WHERE status = 'no_model'")[0][0].as<int>();
  });
  ASSERT_TRUE(statuses);
  EXPECT_EQ(*statuses, 2);
  r = fleetctl("devices list --status no_model");
  EXPECT_EQ(r.exit, 0) << r.out;
}

// Prometheus metrics after the three rollouts: promtool accepts the exposition, and
// the values say what happened (since fleetd's restart for the counters).
void RolloutE2E::check_metrics() {
  const std::string text = fleetd_->scrape_metrics();
  ASSERT_FALSE(text.empty()) << "no metrics on port " << fleetd_->metrics_port();
  const fs::path file = dir_ / "metrics.txt";
  std::ofstream(file) << text;
  const auto promtool = run_command("promtool check metrics < " + file.string() + " 2>&1");
  EXPECT_EQ(promtool.exit, 0) << promtool.out;
  // Sum of the samples of `name` whose labels contain every one of `with`.
  auto sum = [&](const std::string& name, std::vector<std::string> with = {}) {
    double total = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(name, 0) != 0 ||
          (line.size() > name.size() && line[name.size()] != '{' && line[name.size()] != ' ')) {
        continue;
      }
      bool match = true;
      for (const auto& w : with) match = match && line.find(w) != std::string::npos;
      if (match) total += std::stod(line.substr(line.rfind(' ') + 1));
    }
    return total;
  };
  EXPECT_EQ(sum("tinyfleet_rollouts", {"state=\"completed\""}), 2) << text;
  EXPECT_EQ(sum("tinyfleet_rollouts", {"state=\"rolled_back\""}), 1);
  EXPECT_EQ(sum("tinyfleet_devices"), 2 * kPerClass);
  EXPECT_EQ(sum("tinyfleet_devices", {"model=\"digits\"", "version=\"2\""}), 2 * kPerClass);
  EXPECT_EQ(sum("tinyfleet_database_up"), 1);
  EXPECT_GE(sum("tinyfleet_grpc_calls_total",
                {"method=\"/tinyfleet.v1.Rollouts/CreateRollout\"", "code=\"OK\""}),
            1);
  EXPECT_GE(sum("tinyfleet_grpc_calls_total", {"method=\"/tinyfleet.v1.Rollouts/WatchRollout\""}),
            1);
  EXPECT_GT(sum("tinyfleet_telemetry_messages_total", {"outcome=\"written\""}), 0);
  EXPECT_GT(sum("tinyfleet_mqtt_messages_out_total", {"kind=\"offer\""}), 0);
  EXPECT_GT(sum("tinyfleet_db_pool_acquisitions_total"), 0);
}

}  // namespace
}  // namespace tinyfleet::testing
