// Faults survived (issue 20, point 4): a rollout of 200 simulated devices (fleet-sim) in
// three phases during which the broker is killed (SIGKILL) and restarted, PostgreSQL is
// crashed (immediate stop) and restarted, and fleetd is SIGKILLed and started again. The
// test owns all three (a PrivateBroker configured as the stack's, a PrivatePostgres, a
// fleetd process), so the faults touch no other test. It asserts that the rollout
// completes, every device runs the target, no device was offered two releases for the
// target (every retained offer on the broker is watched and verified), and every telemetry
// window a device sent is stored exactly once (per device: as many rows as fleet-sim says
// it sent, no seq twice, no gap).
#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "fleetd_process.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/private_broker.h"
#include "tinyfleet/testing/private_postgres.h"
#include "tinyfleet/update/offer.h"
#include "tinyfleet/update/sodium_crypto.h"
#include "tinyfleet/update/topics.h"
#include "tinyfleet/update/update_keys.h"

namespace tinyfleet::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kDevices = 200;
constexpr const char* kClass = "cortex-m4-256k";

uint64_t now_unix() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += d[p[i] >> 4];
    out += d[p[i] & 15];
  }
  return out;
}

// Every offer the broker hands a subscriber of all offer topics (retained ones again after
// each reconnect), verified as a device would: device -> {(release, target sha256)}.
class OfferWatch {
 public:
  OfferWatch(const std::string& uri, std::string root_key)
      : root_(std::move(root_key)),
        client_(uri, "chaos-watch-" + std::to_string(getpid()),
                mqtt::create_options(MQTTVERSION_5)) {
    client_.set_message_callback([this](mqtt::const_message_ptr m) { seen(*m); });
    client_.set_connected_handler([this](const std::string&) {
      try {
        client_.subscribe("tinyfleet/v1/+/+/offer", 1);
      } catch (const mqtt::exception&) {
      }
    });
    auto opts = mqtt::connect_options_builder()
                    .mqtt_version(MQTTVERSION_5)
                    .clean_start(true)
                    .user_name(require_env("TINYFLEET_MQTT_SERVER_USER"))
                    .password(require_env("TINYFLEET_MQTT_SERVER_PASSWORD"))
                    .automatic_reconnect(std::chrono::milliseconds(200), std::chrono::seconds(1))
                    .finalize();
    client_.connect(opts)->wait();
  }
  ~OfferWatch() {
    try {
      client_.disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  }
  std::map<std::string, std::set<std::pair<uint64_t, std::string>>> offers() {
    std::lock_guard<std::mutex> lock(mu_);
    return offers_;
  }
  int unverified() const { return unverified_; }

 private:
  void seen(const mqtt::message& m) {
    const std::string& topic = m.get_topic();
    update::TopicName name;
    if (!update::parse_topic(topic.data(), topic.size(), &name).ok()) return;
    const std::string payload = m.get_payload_str();
    if (payload.empty()) return;                              // a withdrawal
    const std::string device(name.device, name.device_size);  // each offer names its device
    const update::DeviceIdentity id{"default", kClass, 0,
                                    reinterpret_cast<const uint8_t*>(root_.data()), device.c_str()};
    const auto checked = update::check_offer(reinterpret_cast<const uint8_t*>(payload.data()),
                                             payload.size(), id, now_unix(), verifier_);
    std::lock_guard<std::mutex> lock(mu_);
    if (checked.status != update::OfferStatus::kOk) {
      ++unverified_;
      return;
    }
    const auto* target = checked.manifest->target_sha256();
    offers_[device].insert({checked.manifest->release_seq(), hex(target->data(), target->size())});
  }
  std::string root_;
  update::SodiumVerifier verifier_;
  mqtt::async_client client_;
  std::mutex mu_;
  std::map<std::string, std::set<std::pair<uint64_t, std::string>>> offers_;
  int unverified_ = 0;
};

class Chaos : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tf-chaos-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ASSERT_TRUE(update::init_keys((dir_ / "keys").string(), now_unix(), 30));
    ASSERT_TRUE(pg_.start()) << "the private PostgreSQL did not start";
    broker_.start();
    const std::string group = "chaos" + std::to_string(getpid());
    fleetd_ = std::make_unique<FleetdProcess>(
        pg_.uri(), admin_,
        std::map<std::string, std::string>{
            {"mqtt.host", "127.0.0.1"},
            {"mqtt.port", std::to_string(broker_.port())},
            {"mqtt.passwd_file", broker_.passwd_file()},
            {"mqtt.pid", std::to_string(broker_.pid())},
            {"mqtt.user", require_env("TINYFLEET_MQTT_SERVER_USER")},
            {"mqtt.password", require_env("TINYFLEET_MQTT_SERVER_PASSWORD")},
            // One fleetd: plain subscriptions. Mosquitto 2.0 does not persist shared ones,
            // so after its restart a share group's telemetry is dropped until fleetd has
            // subscribed again (devices reconnect first and flush their windows).
            {"mqtt.share_group", ""},
            // One persistent listener session across fleetd's restarts: what devices send
            // while fleetd is down waits at the broker.
            {"mqtt.session", group + "-listener"},
            // Windows taken from the broker wait here until stored (a SIGKILL loses none).
            {"telemetry.spool_dir", (dir_ / "spool").string()},
            {"keys.dir", (dir_ / "keys").string()},
            {"keys.root_public_key_file", (dir_ / "keys" / "root.pub").string()},
            {"rollouts.tick_ms", "200"}});
    ASSERT_NO_FATAL_FAILURE(fleetd_->start());
  }
  void TearDown() override {
    stop_sim();
    fleetd_.reset();
    if (HasFailure()) {
      std::ifstream in(dir_ / "sim.log");
      std::string line;
      for (int i = 0; i < 40 && std::getline(in, line); ++i) std::printf("%s\n", line.c_str());
    }
    fs::remove_all(dir_);
  }

  CommandResult fleetctl(const std::string& args) {
    return run_fleetctl(fleetd_->port(), admin_, args, elapsed());
  }
  void note(const std::string& what) {
    faults_.emplace_back(what, static_cast<long long>(now_unix()));
    std::printf("[%5.1fs] %s\n", elapsed(), what.c_str());
    std::fflush(stdout);
  }

  void start_sim() {
    sim_ = fork();
    if (sim_ == 0) {
      std::freopen((dir_ / "sim.log").c_str(), "w", stdout);
      execl(TINYFLEET_FLEET_SIM, "fleet-sim", "--broker", broker_.uri().c_str(), "--class", kClass,
            "--credentials", (dir_ / "creds").c_str(), "--root-key",
            (dir_ / "keys" / "root.pub").c_str(), "--data",
            fixture_path("data/digits_val.npz").c_str(), "--rate", "2", "--window", "2",
            "--probe-every", "1", "--state", (dir_ / "state").c_str(), "--report",
            (dir_ / "report.jsonl").c_str(), nullptr);
      _exit(127);
    }
  }
  void stop_sim() {
    if (sim_ <= 0) return;
    kill(sim_, SIGTERM);
    waitpid(sim_, nullptr, 0);
    sim_ = -1;
  }

  // A query on the private database (a connection of its own each time: it restarts).
  pqxx::result query(const std::string& sql) {
    pqxx::connection c(pg_.uri());
    pqxx::nontransaction n(c);
    return n.exec(sql);
  }
  int offered() {
    try {
      return query("SELECT count(*) FROM rollout_devices WHERE release_seq IS NOT NULL")[0][0]
          .as<int>();
    } catch (const std::exception&) {
      return -1;  // the database is away
    }
  }
  // Waits (up to 180 s: ASan builds are slow) until at least `n` devices were offered.
  bool wait_offered(int n) {
    for (int i = 0; i < 1800; ++i) {
      if (offered() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  const std::string admin_ = "tf_chaos_admin_secret_0123456789";
  fs::path dir_;
  PrivatePostgres pg_;
  PrivateBroker broker_{/*persistence=*/true};
  std::unique_ptr<FleetdProcess> fleetd_;
  pid_t sim_ = -1;
  std::vector<std::pair<std::string, long long>> faults_;  // what, unix seconds
};

TEST_F(Chaos, ARolloutCompletesThroughBrokerDatabaseAndFleetdCrashes) {
  auto r = fleetctl(std::string("classes import ") + TINYFLEET_DEVICE_CLASS_CATALOG);
  ASSERT_EQ(r.exit, 0) << r.out;
  r = fleetctl("devices provision --count " + std::to_string(kDevices) +
               " --prefix chaos- --class " + kClass + " --tags chaos --credentials-out " +
               (dir_ / "creds").string());
  ASSERT_EQ(r.exit, 0) << r.out;
  ASSERT_EQ(fleetctl("models create digits").exit, 0);
  r = fleetctl("versions create digits --onnx " + fixture_path("models/digits_cnn.onnx") +
               " --calibration " + fixture_path("data/digits_calib.npz") + " --validation " +
               fixture_path("data/digits_val.npz") + " --classes " + kClass);
  ASSERT_EQ(r.exit, 0) << r.out;
  std::string root_key;
  {
    std::ifstream in(dir_ / "keys" / "root.pub", std::ios::binary);
    root_key.assign(std::istreambuf_iterator<char>(in), {});
  }
  OfferWatch watch(broker_.uri(), root_key);
  start_sim();

  // 10 devices a second, three phases: the faults land in different phases.
  r = fleetctl(
      "rollouts create chaos --model digits --version 1 --tags chaos --phases 10:1,50:1,100:1 "
      "--rate 600 --gates 'failure_rate <= 0.05'");
  ASSERT_EQ(r.exit, 0) << r.out;

  ASSERT_TRUE(wait_offered(10)) << fleetd_->log().substr(0, 20000);
  note("kill -9 the broker");
  broker_.kill();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  broker_.start();

  ASSERT_TRUE(wait_offered(60)) << fleetd_->log().substr(0, 20000);
  note("crash and restart PostgreSQL");
  ASSERT_TRUE(pg_.stop(/*immediate=*/true));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ASSERT_TRUE(pg_.start());

  ASSERT_TRUE(wait_offered(120)) << fleetd_->log().substr(0, 20000);
  note("kill -9 fleetd");
  fleetd_->kill_hard();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ASSERT_NO_FATAL_FAILURE(fleetd_->start());

  r = fleetctl("rollouts watch chaos");
  ASSERT_EQ(r.exit, 0) << r.out << fleetd_->log().substr(0, 20000);
  note("completed");

  // Every device on the target.
  const auto rows = query(
      "SELECT rd.device_id, rd.state, d.current_artifact_sha256 = rd.target_artifact FROM "
      "rollout_devices rd JOIN devices d ON d.id = rd.device_id");
  ASSERT_EQ(rows.size(), static_cast<size_t>(kDevices));
  for (const auto& row : rows) {
    EXPECT_EQ(row[1].as<std::string>(), "updated") << row[0].as<std::string>();
    EXPECT_TRUE(row[2].as<bool>(false)) << row[0].as<std::string>() << " is not on the target";
  }
  const std::string target =
      query("SELECT DISTINCT target_artifact FROM rollout_devices")[0][0].as<std::string>();

  // One release per device for the target, in every offer the broker ever handed out.
  const auto offers = watch.offers();
  EXPECT_EQ(watch.unverified(), 0);
  EXPECT_EQ(offers.size(), static_cast<size_t>(kDevices));
  for (const auto& [device, seen] : offers) {
    std::set<uint64_t> releases;
    for (const auto& [release, sha] : seen) {
      EXPECT_EQ(sha, target) << device;
      releases.insert(release);
    }
    EXPECT_EQ(releases.size(), 1u)
        << device << " was offered " << releases.size() << " releases for one target";
  }

  // Telemetry: let the devices send a few windows on the new model, stop them (fleet-sim
  // reports what each sent), give fleetd time to store what is on its way, then compare.
  std::this_thread::sleep_for(std::chrono::seconds(4));
  stop_sim();
  std::map<std::string, int64_t> sent;
  {
    std::ifstream in(dir_ / "report.jsonl");
    for (std::string line; std::getline(in, line);) {
      const auto j = json::parse(line);
      sent[j["device"]] = j["windows_sent"].get<int64_t>();
    }
  }
  ASSERT_EQ(sent.size(), static_cast<size_t>(kDevices));
  std::map<std::string, std::tuple<int64_t, int64_t, int64_t>> stored;  // rows, distinct, span
  for (int i = 0; i < 150; ++i) {
    stored.clear();
    for (const auto& row : query("SELECT device_id, count(*), count(DISTINCT seq), "
                                 "max(seq) - min(seq) + 1 FROM telemetry GROUP BY device_id")) {
      stored[row[0].as<std::string>()] = {row[1].as<int64_t>(), row[2].as<int64_t>(),
                                          row[3].as<int64_t>()};
    }
    int64_t total_sent = 0, total_stored = 0;
    for (const auto& [d, n] : sent) total_sent += n;
    for (const auto& [d, s] : stored) total_stored += std::get<0>(s);
    if (total_stored >= total_sent) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  int64_t windows = 0, missing = 0, twice = 0;
  for (const auto& [device, n] : sent) {
    const auto [rows_, distinct, span] = stored[device];
    windows += n;
    twice += rows_ - distinct;
    missing += std::max<int64_t>(0, n - distinct);
    EXPECT_EQ(rows_, distinct) << device << ": a window stored twice";
    EXPECT_EQ(distinct, n) << device << ": sent " << n << " windows, stored " << distinct;
    if (distinct > 0) {
      EXPECT_EQ(span, distinct) << device << ": a gap in the stored seqs";
    }
  }
  if (missing > 0) {  // when the lost windows would have arrived, against the faults
    for (const auto& row : query(
             "SELECT extract(epoch FROM ts)::bigint, count(*) FROM (SELECT ts, seq - lag(seq) "
             "OVER (PARTITION BY device_id ORDER BY seq) AS step FROM telemetry) t WHERE step > 1 "
             "GROUP BY 1 ORDER BY 1")) {
      std::printf("gap after a window stored at %s: %s devices\n", row[0].c_str(), row[1].c_str());
    }
    for (const auto& row :
         query("SELECT extract(epoch FROM prev)::bigint, count(*), sum(step - 1) FROM (SELECT "
               "lag(ts) OVER w AS prev, seq - lag(seq) OVER w AS step FROM telemetry WINDOW w AS "
               "(PARTITION BY device_id ORDER BY seq)) t WHERE step > 1 GROUP BY 1 ORDER BY 1")) {
      std::printf("gap before: last window stored at %s: %s devices, %s windows\n", row[0].c_str(),
                  row[1].c_str(), row[2].c_str());
    }
    for (const auto& [what, at] : faults_) std::printf("fault at %lld: %s\n", at, what.c_str());
    std::istringstream metrics(fleetd_->scrape_metrics());
    for (std::string line; std::getline(metrics, line);) {
      if (line.rfind("tinyfleet_telemetry_messages_total{", 0) == 0)
        std::printf("%s\n", line.c_str());
    }
    const std::string log = fleetd_->log();
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
      if (line.find("telemetry") != std::string::npos || line.find("listener") != std::string::npos)
        std::printf("%s\n", line.substr(0, 300).c_str());
    }
  }
  std::printf("chaos: %lld windows sent, %lld missing, %lld stored twice; %.1f s\n",
              static_cast<long long>(windows), static_cast<long long>(missing),
              static_cast<long long>(twice), elapsed());
}

}  // namespace
}  // namespace tinyfleet::testing
