// Three fleetd replicas on a 3-node nats-server cluster (issue 21, point 2): each fleetd
// (broker.kind nats) publishes offers and chunks through node 0's MQTT listener and takes
// chunk requests and telemetry through one NATS queue group, so any replica answers any
// device; one leads the rollout engine. kDevices fleet-sim devices speak MQTT 3.1.1, a
// third on each node, each given the other nodes to fall back on. Mid-rollout node 0 is
// SIGKILLed: its
// devices reconnect to another node (clean sessions; the retained offers are in JetStream,
// replicated on all three), fleetd's MQTT sessions go to the next node of mqtt.fallback
// and its NATS connection to another server, and the rollout completes with every device
// on the target, those offered after the kill included.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "fleetd_process.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/nats_cluster.h"
#include "tinyfleet/testing/private_postgres.h"
#include "tinyfleet/update/update_keys.h"

namespace tinyfleet::e2e {
namespace {

using namespace tinyfleet::testing;
using Cluster = tinyfleet::testing::NatsCluster;

namespace fs = std::filesystem;

constexpr int kDevices = 200, kReplicas = 3;
constexpr const char* kClass = "cortex-m4-256k";
// The node killed mid-rollout: the one fleetd's MQTT sessions are on (node 0; the others
// are its mqtt.fallback) and, at first, its NATS connection.
constexpr int kKilled = 0;

uint64_t now_unix() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

class NatsCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tf-nats-e2e-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ASSERT_TRUE(update::init_keys((dir_ / "keys").string(), now_unix(), 30));
    ASSERT_TRUE(pg_.start()) << "the private PostgreSQL did not start";
    ASSERT_TRUE(cluster_.start()) << cluster_.log(0).substr(0, 5000);
    const std::map<std::string, std::string> settings{
        {"broker.kind", "nats"},
        {"nats.servers", cluster_.nats_servers()},
        {"mqtt.host", "127.0.0.1"},
        {"mqtt.port", std::to_string(cluster_.mqtt_port(0))},
        {"mqtt.fallback", "127.0.0.1:" + std::to_string(cluster_.mqtt_port(1)) +
                              ",127.0.0.1:" + std::to_string(cluster_.mqtt_port(2))},
        // Device accounts: fleetd adds them to the file every node includes (the cluster
        // wrote fleetd's own account there) and signals the nodes.
        {"nats.accounts_file", cluster_.accounts_file().string()},
        {"nats.pids", std::to_string(cluster_.pid(0)) + "," + std::to_string(cluster_.pid(1)) +
                          "," + std::to_string(cluster_.pid(2))},
        {"mqtt.pid", "0"},  // not the stack's Mosquitto (TINYFLEET_MQTT_PID)
        {"mqtt.user", "fleetd"},
        {"mqtt.password", kServerPassword},
        {"mqtt.share_group", "nats" + std::to_string(getpid())},
        {"keys.dir", (dir_ / "keys").string()},
        {"keys.root_public_key_file", (dir_ / "keys" / "root.pub").string()},
        {"rollouts.tick_ms", "200"}};
    for (int i = 0; i < kReplicas; ++i) {
      fleetd_.push_back(std::make_unique<FleetdProcess>(pg_.uri(), admin_, settings));
      ASSERT_NO_FATAL_FAILURE(fleetd_.back()->start());
    }
  }
  void TearDown() override {
    for (pid_t& sim : sims_) {
      if (sim > 0) {
        kill(sim, SIGTERM);
        waitpid(sim, nullptr, 0);
        sim = -1;
      }
    }
    if (HasFailure() && !fleetd_.empty()) dump();  // not when SetUp failed before fleetd started
    fleetd_.clear();
    if (HasFailure()) {
      for (int i = 0; i < 3; ++i) {
        for (const char* f : {"sim", "report"}) {
          std::ifstream in(dir_ / (f + std::to_string(i) + (f[0] == 's' ? ".log" : ".jsonl")));
          std::string line;
          for (int n = 0; n < 20 && std::getline(in, line); ++n) std::printf("%s\n", line.c_str());
        }
      }
    }
    cluster_.stop();
    if (HasFailure()) {
      for (int i = 0; i < Cluster::kNodes; ++i) {
        const std::string log = cluster_.log(i);
        std::printf("node %d log (end):\n%s\n", i,
                    log.substr(log.size() > 40000 ? log.size() - 40000 : 0).c_str());
      }
    }
    fs::remove_all(dir_);
  }

  // What fleetd holds when the test fails: each device's rollout state, telemetry rows, the
  // NATS and status counters, and the end of its log.
  void dump() {
    try {
      for (const auto& row :
           query("SELECT rd.device_id, rd.state || ' ' || rd.error, rd.release_seq || ' published "
                 "' || coalesce((SELECT "
                 "o.published_at::text FROM device_offers o WHERE o.device_id = "
                 "rd.device_id AND o.release_seq = rd.release_seq), '-'), (SELECT "
                 "count(*) FROM telemetry t WHERE t.device_id = rd.device_id) "
                 "FROM rollout_devices rd ORDER BY 1")) {
        std::printf("db: %s %s release %s telemetry %s\n", row[0].c_str(), row[1].c_str(),
                    row[2].c_str(), row[3].c_str());
      }
    } catch (const std::exception& e) {
      std::printf("db: %s\n", e.what());
    }
    for (size_t k = 0; k < fleetd_.size(); ++k) {
      std::istringstream metrics(fleetd_[k]->scrape_metrics());
      for (std::string line; std::getline(metrics, line);) {
        if (line[0] != '#' &&
            (line.find("nats") != std::string::npos || line.find("status") != std::string::npos ||
             line.find("telemetry") != std::string::npos)) {
          std::printf("replica %zu metric: %s\n", k, line.c_str());
        }
      }
      const std::string log = fleetd_[k]->log();
      std::printf("replica %zu log (end):\n%s\n", k,
                  log.substr(log.size() > 20000 ? log.size() - 20000 : 0).c_str());
    }
  }

  CommandResult fleetctl(const std::string& args) {
    return run_fleetctl(fleetd_[0]->port(), admin_, args, elapsed());
  }

  // fleet-sim for the devices of `node`: that node first, the other two to fall back on.
  void start_sim(int node) {
    const std::string n = std::to_string(node);
    std::vector<std::string> args = {"fleet-sim", "--mqtt-v311"};
    for (int i = 0; i < Cluster::kNodes; ++i) {
      args.push_back("--broker");
      args.push_back(cluster_.mqtt_uri((node + i) % Cluster::kNodes));
    }
    for (const std::string& a :
         {std::string("--class"), std::string(kClass), std::string("--credentials"),
          (dir_ / ("creds" + n)).string(), std::string("--root-key"),
          (dir_ / "keys" / "root.pub").string(), std::string("--data"),
          fixture_path("data/digits_val.npz"), std::string("--rate"), std::string("2"),
          std::string("--window"), std::string("2"), std::string("--probe-every"), std::string("1"),
          std::string("--state"), (dir_ / ("state" + n)).string(), std::string("--report"),
          (dir_ / ("report" + n + ".jsonl")).string()}) {
      args.push_back(a);
    }
    const pid_t pid = fork();
    if (pid == 0) {
      std::freopen((dir_ / ("sim" + n + ".log")).c_str(), "w", stdout);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(TINYFLEET_FLEET_SIM, argv.data());
      _exit(127);
    }
    sims_[node] = pid;
  }

  pqxx::result query(const std::string& sql) {
    pqxx::connection c(pg_.uri());
    pqxx::nontransaction n(c);
    return n.exec(sql);
  }
  int count(const std::string& sql) {
    try {
      return query(sql)[0][0].as<int>();
    } catch (const std::exception&) {
      return -1;
    }
  }
  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

  static constexpr const char* kServerPassword = "tf_nats_fleetd_password_0123";
  const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  const std::string admin_ = "tf_nats_admin_secret_0123456789";
  fs::path dir_;
  PrivatePostgres pg_;
  Cluster cluster_{"fleetd", kServerPassword};
  std::vector<std::unique_ptr<FleetdProcess>> fleetd_;
  // The replicas' logs, one after the other.
  std::string logs() const {
    std::string all;
    for (const auto& f : fleetd_) all += f->log();
    return all;
  }
  // A counter of one replica's /metrics (-1 if absent).
  double metric(size_t replica, const std::string& series) const {
    std::istringstream metrics(fleetd_[replica]->scrape_metrics());
    for (std::string line; std::getline(metrics, line);) {
      if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    }
    return -1;
  }
  pid_t sims_[Cluster::kNodes] = {-1, -1, -1};
};

// The devices connect while the first offers go out: a device that subscribes on node 1
// or 2 just after fleetd published its offer on node 0 can miss the live message and the
// retained copy (that node has not loaded it yet); fleetd sends unanswered offers again
// (RolloutEngine::set_offer_resend), so the first phase does not stall on such a device.
TEST_F(NatsCluster, ARolloutCompletesWhenOneBrokerNodeDies) {
  auto r = fleetctl(std::string("classes import ") + TINYFLEET_DEVICE_CLASS_CATALOG);
  ASSERT_EQ(r.exit, 0) << r.out;
  r = fleetctl("devices provision --count " + std::to_string(kDevices) +
               " --prefix nats- --class " + kClass + " --tags nats --credentials-out " +
               (dir_ / "creds").string());
  ASSERT_EQ(r.exit, 0) << r.out;
  // The devices' credentials, a third per node; their NATS accounts are fleetd's doing
  // (nats.accounts_file), which every node accepts once its reload is through.
  std::vector<std::pair<std::string, std::string>> accounts;
  {
    std::ifstream in(dir_ / "creds");
    std::ofstream out[3] = {std::ofstream(dir_ / "creds0"), std::ofstream(dir_ / "creds1"),
                            std::ofstream(dir_ / "creds2")};
    std::string id, password;
    while (in >> id >> password) {
      out[accounts.size() % 3] << id << ' ' << password << '\n';
      accounts.emplace_back(id, password);
    }
  }
  ASSERT_EQ(accounts.size(), static_cast<size_t>(kDevices));
  // Every provisioning call has returned, so every entry is written; the reload owed for
  // the last write (BrokerAccounts' trailing SIGHUP, at most kMinGap + kSettle later) is
  // then the one to wait for.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_TRUE(cluster_.accepted_everywhere(accounts.back().first, accounts.back().second, 30))
      << cluster_.log(0).substr(0, 5000);
  {
    std::ifstream in(cluster_.accounts_file());
    std::string line;
    int entries = 0;
    while (std::getline(in, line)) entries += line.find("\"$2b$04$") != std::string::npos;
    EXPECT_EQ(entries, kDevices) << "bcrypt entries fleetd wrote";
  }
  ASSERT_EQ(fleetctl("models create digits").exit, 0);
  r = fleetctl("versions create digits --onnx " + fixture_path("models/digits_cnn.onnx") +
               " --calibration " + fixture_path("data/digits_calib.npz") + " --validation " +
               fixture_path("data/digits_val.npz") + " --classes " + kClass);
  ASSERT_EQ(r.exit, 0) << r.out;
  for (int node = 0; node < Cluster::kNodes; ++node) start_sim(node);

  // 20 devices a second in two phases, so the node dies with the rollout under way.
  r = fleetctl(
      "rollouts create nats --model digits --version 1 --tags nats --phases 30:1,100:1 "
      "--rate 1200 --gates 'failure_rate <= 0.05'");
  ASSERT_EQ(r.exit, 0) << r.out;
  const std::string offered = "SELECT count(*) FROM rollout_devices WHERE release_seq IS NOT NULL";
  for (int i = 0; i < 1800 && count(offered) < kDevices / 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(count(offered), kDevices / 2) << logs().substr(0, 20000);
  const int updated_before = count("SELECT count(*) FROM rollout_devices WHERE state = 'updated'");
  const int offered_before = count(offered);
  std::printf("[%5.1fs] kill -9 broker node %d (%d of %d devices offered, %d updated)\n", elapsed(),
              kKilled, count(offered), kDevices, updated_before);
  std::fflush(stdout);
  cluster_.kill(kKilled);

  // Until the rollout ends (what `rollouts watch` waits for), failing at once if a simulator
  // died (a crashed device would leave the rollout waiting for it until the test's timeout).
  std::string state;
  for (int i = 0; i < 2400; ++i) {
    for (int node = 0; node < Cluster::kNodes; ++node) {
      int status = 0;
      if (sims_[node] > 0 && waitpid(sims_[node], &status, WNOHANG) == sims_[node]) {
        sims_[node] = -1;
        FAIL() << "the fleet-sim of node " << node << " ended (wait status " << status
               << ") with the rollout under way";
      }
    }
    const auto rows = query("SELECT state FROM rollouts WHERE name = 'nats'");
    state = rows.empty() ? "" : rows[0][0].as<std::string>();
    if (state != "created" && state != "running" && state != "paused") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(state, "completed");
  r = fleetctl("rollouts watch nats");
  ASSERT_EQ(r.exit, 0) << r.out << logs().substr(0, 20000);
  std::printf("[%5.1fs] completed\n", elapsed());

  // Every device on the target, the killed node's too.
  const auto rows = query(
      "SELECT rd.device_id, rd.state, d.current_artifact_sha256 = rd.target_artifact FROM "
      "rollout_devices rd JOIN devices d ON d.id = rd.device_id");
  ASSERT_EQ(rows.size(), static_cast<size_t>(kDevices));
  for (const auto& row : rows) {
    EXPECT_EQ(row[1].as<std::string>(), "updated") << row[0].as<std::string>();
    EXPECT_TRUE(row[2].as<bool>(false)) << row[0].as<std::string>() << " is not on the target";
  }
  // Telemetry reached fleetd through the queue group.
  EXPECT_GT(count("SELECT count(*) FROM telemetry"), 0);
  const std::string log = logs();
  // Any replica answers any chunk request (the queue group): more than one answered some.
  int answering = 0;
  for (size_t k = 0; k < fleetd_.size(); ++k) {
    const double sent = metric(k, R"(tinyfleet_mqtt_messages_out_total{kind="chunk"})");
    std::printf("replica %zu sent %.0f chunks\n", k, sent);
    answering += sent > 0 ? 1 : 0;
  }
  EXPECT_GE(answering, 2);
  // Offers went out after the kill, so through a fallback node; the publisher says so.
  EXPECT_LT(offered_before, kDevices);
  EXPECT_NE(log.find("publisher.reconnected"), std::string::npos);
  size_t resends = 0;
  for (size_t at = 0; (at = log.find("\"why\":\"resend\"", at)) != std::string::npos; ++at) {
    ++resends;
  }
  std::printf("fleetd offer resends with offers outstanding: %zu\n", resends);
  std::printf("fleetd NATS reconnects: %s; %d devices offered after the kill\n",
              log.find("nats.reconnected") != std::string::npos ? "yes" : "none",
              kDevices - offered_before);
}

}  // namespace
}  // namespace tinyfleet::e2e
