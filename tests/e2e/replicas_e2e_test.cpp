// Interchangeable fleetd replicas (issue 21, first acceptance test): three fleetd
// processes on one database and the stack's broker, 200 fleet-sim devices, one rollout;
// the leader is SIGKILLed once half the devices are updated. The rollout completes under
// another replica (a newer lease epoch); every chunk a device asked for came by its first
// retry at worst (any replica answers any chunk request: a follower loads the payload of
// the device's outstanding offer); no device was offered twice (its release before the
// kill is the one it installed). A deposed leader's late write being refused is tested
// where it can be forced: RolloutRepository.ADeposedLeadersLateWriteIsRefused and
// AbortMidTick.ALeaderDeposedMidTickHasItsWriteRefused.
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

constexpr int kDevices = 200, kReplicas = 3;

class ReplicasE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tf-replicas-" + std::to_string(getpid()));
    ASSERT_TRUE(fresh_keys_dir(dir_));
    // One deployment: the replicas split chunk requests and telemetry in one group.
    const auto settings = stack_fleetd_settings(dir_, "replicas" + std::to_string(getpid()));
    for (int i = 0; i < kReplicas; ++i) {
      replicas_.push_back(std::make_unique<FleetdProcess>(scratch_.uri(), admin_, settings));
      ASSERT_NO_FATAL_FAILURE(replicas_.back()->start());
    }
  }
  void TearDown() override {
    stop_sim();
    replicas_.clear();
    if (HasFailure()) {
      std::ifstream in(dir_ / "sim.log");
      std::string line;
      for (int i = 0; i < 40 && std::getline(in, line); ++i) std::printf("%s\n", line.c_str());
    }
    fs::remove_all(dir_);
  }

  // fleetctl against replica `i`; its exit code and what it printed.
  CommandResult fleetctl(size_t i, const std::string& args) {
    std::printf("[%5.1fs] fleetctl (replica %zu) %s\n", elapsed(), i, args.substr(0, 60).c_str());
    std::fflush(stdout);
    return run_command("FLEETCTL_ENDPOINT=127.0.0.1:" + std::to_string(replicas_[i]->port()) +
                       " FLEETCTL_TOKEN=" + admin_ + " FLEETCTL_CONFIG=/nonexistent " +
                       TINYFLEET_FLEETCTL + " " + args + " 2>&1");
  }

  void start_sim(const std::string& cls, const std::string& creds) {
    sim_ = fork();
    if (sim_ == 0) {
      const std::string broker = tls_broker_uri(true), ca = broker_ca_file();
      const std::string log = (dir_ / "sim.log").string();
      std::freopen(log.c_str(), "w", stdout);
      execl(TINYFLEET_FLEET_SIM, "fleet-sim", "--broker", broker.c_str(), "--ca", ca.c_str(),
            "--class", cls.c_str(), "--credentials", creds.c_str(), "--root-key",
            (dir_ / "keys" / "root.pub").c_str(), "--data",
            fixture_path("data/digits_val.npz").c_str(), "--rate", "1", "--window", "5", "--state",
            (dir_ / "sim").c_str(), "--report", (dir_ / "sim.jsonl").c_str(), nullptr);
      _exit(127);
    }
  }
  // SIGTERM: fleet-sim writes its report (one JSON line per device) and exits.
  void stop_sim() {
    if (sim_ <= 0) return;
    kill(sim_, SIGTERM);
    int st = 0;
    waitpid(sim_, &st, 0);
    sim_ = -1;
  }

  // device -> (state, release) in a rollout.
  std::map<std::string, std::pair<std::string, int64_t>> devices_of(const std::string& name) {
    auto out = rollout_device_states(scratch_.db(), name);
    EXPECT_TRUE(out);
    return out ? *out : std::map<std::string, std::pair<std::string, int64_t>>{};
  }

  // The replicas that have logged taking leadership (by index).
  std::vector<size_t> leaders() const {
    std::vector<size_t> out;
    for (size_t i = 0; i < replicas_.size(); ++i) {
      if (replicas_[i] &&
          replicas_[i]->log().find("\"event\":\"rollouts.leader\"") != std::string::npos) {
        out.push_back(i);
      }
    }
    return out;
  }

  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  const std::string admin_ = "tf_replicas_admin_secret_0123456789";
  fs::path dir_;
  ScratchDatabase scratch_;
  std::vector<std::unique_ptr<FleetdProcess>> replicas_;
  pid_t sim_ = -1;
};

TEST_F(ReplicasE2E, ARolloutCompletesThroughALeaderKilledAtHalfway) {
  const std::string cls = "cortex-m4-256k";
  auto r = fleetctl(0, std::string("classes import ") + TINYFLEET_DEVICE_CLASS_CATALOG);
  ASSERT_EQ(r.exit, 0) << r.out;
  r = fleetctl(1, "devices provision --count " + std::to_string(kDevices) +
                      " --prefix rp- --class " + cls + " --tags replicas --credentials-out " +
                      (dir_ / "creds").string());
  ASSERT_EQ(r.exit, 0) << r.out;
  ASSERT_EQ(fleetctl(2, "models create digits").exit, 0);
  r = fleetctl(0, "versions create digits --onnx " + fixture_path("models/digits_cnn.onnx") +
                      " --calibration " + fixture_path("data/digits_calib.npz") + " --validation " +
                      fixture_path("data/digits_val.npz") + " --classes " + cls);
  ASSERT_EQ(r.exit, 0) << r.out;
  start_sim(cls, (dir_ / "creds").string());

  const auto before = leaders();
  ASSERT_EQ(before.size(), 1u) << "one leader among the replicas";
  const size_t leader = before[0];
  const size_t other = (leader + 1) % kReplicas;

  // 10 devices a second: the leader dies with devices pending, offered and downloading.
  r = fleetctl(other,
               "rollouts create v1 --model digits --version 1 --tags replicas --phases 100:1 "
               "--rate 600 --gates 'failure_rate <= 0.05'");
  ASSERT_EQ(r.exit, 0) << r.out;
  std::map<std::string, int64_t> release_before;
  bool killed = false;
  for (const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
       !killed && std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(std::chrono::milliseconds(100))) {
    const auto devices = devices_of("v1");
    int updated = 0;
    for (const auto& [id, d] : devices) updated += d.first == "updated";
    if (updated < kDevices / 2) continue;
    for (const auto& [id, d] : devices) {
      if (d.second != 0) release_before[id] = d.second;
    }
    replicas_[leader]->kill_hard();
    killed = true;
    std::printf("[%5.1fs] leader (replica %zu) killed: %d of %zu updated, %zu offered\n", elapsed(),
                leader, updated, devices.size(), release_before.size());
  }
  ASSERT_TRUE(killed) << "v1 never reached half the devices\n"
                      << replicas_[leader]->log().substr(0, 20000);
  EXPECT_LT(release_before.size(), static_cast<size_t>(kDevices)) << "all admitted before";

  r = fleetctl(other, "rollouts watch v1");
  ASSERT_EQ(r.exit, 0) << r.out;
  std::printf("[%5.1fs] v1 completed\n", elapsed());
  replicas_[leader].reset();
  const auto after = leaders();
  ASSERT_EQ(after.size(), 1u) << "another replica took over";
  EXPECT_NE(replicas_[after[0]]->log().find("\"epoch\":2"), std::string::npos)
      << "the new leader's lease epoch";

  const auto v1 = devices_of("v1");
  ASSERT_EQ(v1.size(), static_cast<size_t>(kDevices));
  for (const auto& [id, d] : v1) {
    EXPECT_EQ(d.first, "updated") << id;
    // Offered once: a device offered before the kill kept its release number.
    if (release_before.count(id)) {
      EXPECT_EQ(d.second, release_before[id]) << id;
    }
  }
  auto offers = scratch_.db().transact(
      [](pqxx::work& w) { return w.exec("SELECT device_id, release_seq FROM device_offers"); });
  ASSERT_TRUE(offers);
  EXPECT_EQ(offers->size(), static_cast<size_t>(kDevices));
  for (const auto& row : *offers) {
    const auto id = row[0].as<std::string>();
    EXPECT_EQ(row[1].as<int64_t>(), v1.at(id).second) << id;
  }

  // What the devices saw: the release installed, and how many chunk retries in a row.
  stop_sim();
  std::ifstream in(dir_ / "sim.jsonl");
  int reports = 0;
  uint64_t retries = 0, worst = 0;
  for (std::string line; std::getline(in, line);) {
    const auto d = json::parse(line);
    const auto id = d["device"].get<std::string>();
    ++reports;
    EXPECT_EQ(d["release"].get<int64_t>(), v1.at(id).second) << id;
    EXPECT_EQ(d["failed_release"].get<int64_t>(), 0) << id;
    retries += d["chunk_retries"].get<uint64_t>();
    worst = std::max(worst, d["chunk_retries_in_row_max"].get<uint64_t>());
    EXPECT_LE(d["chunk_retries_in_row_max"].get<uint64_t>(), 1u)
        << id << ": a chunk request went unanswered more than one retry";
  }
  EXPECT_EQ(reports, kDevices);
  std::printf("[%5.1fs] chunk retries: %llu in all, at most %llu in a row\n", elapsed(),
              static_cast<unsigned long long>(retries), static_cast<unsigned long long>(worst));
  // The surviving replicas both served chunks (each answers what a device asks it), one
  // of them leads under epoch 2, and promtool takes their metrics.
  int leading = 0;
  for (size_t i = 0; i < replicas_.size(); ++i) {
    if (!replicas_[i]) continue;
    const std::string m = replicas_[i]->scrape_metrics();
    const auto value = [&](const std::string& sample) {
      const auto at = m.find("\n" + sample + " ");  // a sample line, not its # HELP
      EXPECT_NE(at, std::string::npos) << sample << " in\n" << m;
      return at == std::string::npos ? -1.0 : std::stod(m.substr(at + sample.size() + 2));
    };
    const double chunks = value("tinyfleet_mqtt_messages_out_total{kind=\"chunk\"}");
    std::printf("replica %zu served %.0f chunks, looked up %.0f payloads\n", i, chunks,
                value("tinyfleet_update_payload_lookups_total{outcome=\"looked_up\"}"));
    EXPECT_GT(chunks, 0) << "replica " << i;
    if (value("tinyfleet_rollouts_leader") == 1) {
      ++leading;
      EXPECT_EQ(value("tinyfleet_rollouts_leader_epoch"), 2);
    }
    EXPECT_EQ(value("tinyfleet_rollouts_writes_fenced_total"), 0);
    const fs::path file = dir_ / ("metrics" + std::to_string(i) + ".txt");
    std::ofstream(file) << m;
    const auto promtool = run_command("promtool check metrics < " + file.string() + " 2>&1");
    EXPECT_EQ(promtool.exit, 0) << promtool.out;
  }
  EXPECT_EQ(leading, 1);
}

}  // namespace
}  // namespace tinyfleet::testing
