// Rollouts at scale (a benchmark, not a test): fleets of 1,000 and 5,000 simulated
// devices (fleet-sim processes of up to 1,000 MQTT sessions each) against the real
// fleetd, PostgreSQL and Mosquitto. For each size, the same update (digits_cnn ->
// digits_cnn_v2, both compiled by fleetd for cortex-m4-256k) is rolled out once with
// whole artifacts and once with deltas, from 0 to 100% (phases 10/50/100, no bake):
// time to 100%, bytes through the broker (Mosquitto's own $SYS counters) and fleetd CPU.
// Then telemetry ingestion at the largest size: every device publishes a window a
// second; the rows fleetd COPYs into PostgreSQL per second.
// Also: offers stored per second over the v2 rollout (its pace), the database's
// size, and the ingest's lag and drops (fleetd's own metrics).
//   deploy/local/run-bench.sh bench_rollout_scale            # 1000 and 5000
//   deploy/local/run-bench.sh bench_rollout_scale 200 1000   # other sizes
//   deploy/local/run-bench.sh bench_rollout_scale --deltas 10000   # deltas only
//   deploy/local/run-bench.sh bench_rollout_scale --deltas --replicas 3 10000
//   deploy/local/run-bench.sh bench_rollout_scale --sessions paho 1000   # Paho devices
//   deploy/local/run-bench.sh bench_rollout_scale --sims-nice 0 1000     # at fleetd's priority
// The simulated devices run the firmware's MQTT client (fleet-sim --sessions firmware):
// ten processes of 1,000 Paho sessions took a core of two with their devices idle, so the
// simulators, not fleetd, set the pace on a 2-core box. The bench prints where the box's CPU went.
// With --replicas N, N fleetd processes share the database and the broker (one share
// group); one leads the engine. Per phase of the v2 rollout it prints the engine's own
// admission rate (print_phases says how it is counted).
// --sims-nice N runs the simulators at nice N (default 0), so they take the CPU the broker,
// fleetd and PostgreSQL leave rather than an equal share (devices do not share the
// server's CPUs): at 10 the offers went out 2-3 times faster, but the devices' own work
// waited and time to 100% grew by half (docs/scale.md, the fifth round).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "fleetd_process.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/scratch_database.h"
#include "tinyfleet/update/update_keys.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using tinyfleet::testing::fixture_path;
using tinyfleet::testing::FleetdProcess;
using tinyfleet::testing::require_env;
using tinyfleet::testing::ScratchDatabase;

namespace {

constexpr int kPerSim = 1000;  // MQTT sessions per fleet-sim process
constexpr const char* kClass = "cortex-m4-256k";

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string run(const std::string& cmd, int* exit_code = nullptr) {
  auto r = tinyfleet::testing::run_command(cmd);
  if (exit_code) *exit_code = r.exit;
  return r.out;
}

// Throws, with the stack's reason (mqtt/died: exit status, log tail) or the broker log's
// tail, when the stack's Mosquitto is gone: a dead broker ends the run instead of
// leaving it to wait for devices that can never connect.
void check_broker() {
  const char* pid = std::getenv("TINYFLEET_MQTT_PID");
  if (pid == nullptr || kill(std::atoi(pid), 0) == 0) return;
  const fs::path dir = fs::path(require_env("TINYFLEET_MQTT_PASSWD_FILE")).parent_path();
  std::ifstream died(dir / "died"), log(dir / "mosquitto.log");
  std::string why((std::istreambuf_iterator<char>(died ? died : log)),
                  std::istreambuf_iterator<char>());
  if (why.size() > 2000) why = why.substr(why.size() - 2000);
  throw std::runtime_error("the broker (pid " + std::string(pid) + ") is gone:\n" + why);
}

// A counter of the broker's $SYS tree (retained, refreshed every sys_interval).
long long broker_counter(const std::string& topic) {
  const std::string cmd = "mosquitto_sub -h " + require_env("TINYFLEET_MQTT_HOST") + " -p " +
                          require_env("TINYFLEET_MQTT_PORT") + " -u '" +
                          require_env("TINYFLEET_MQTT_SERVER_USER") + "' -P '" +
                          require_env("TINYFLEET_MQTT_SERVER_PASSWORD") + "' -C 1 -W 5 -t '" +
                          topic + "' 2>/dev/null";
  for (int attempt = 0; attempt < 3; ++attempt) {  // a loaded broker may miss the 5 s
    const std::string out = run(cmd);
    if (!out.empty()) return std::stoll(out);
  }
  return -1;
}

// Bytes the broker sent plus received, read after its next $SYS refresh.
long long broker_bytes() {
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  return broker_counter("$SYS/broker/bytes/sent") + broker_counter("$SYS/broker/bytes/received");
}

// CPU seconds (user + system) a process has used.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> f;
  size_t i = close + 2;
  while (i < s.size()) {
    const size_t j = s.find(' ', i);
    f.push_back(s.substr(i, j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  // After "pid (comm) ": state is field 3, utime 14 and stime 15 (1-based).
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU seconds the whole box has been busy (all cores; /proc/stat less idle and iowait).
double box_busy_seconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return (user + nice + system + irq + softirq + steal) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Where the box's CPU went over a span: fleetd (all replicas), the simulators, the broker,
// and the rest (PostgreSQL, mostly).
struct CpuSplit {
  double fleetd = 0, sims = 0, broker = 0, box = 0;
  CpuSplit operator-(const CpuSplit& o) const {
    return {fleetd - o.fleetd, sims - o.sims, broker - o.broker, box - o.box};
  }
};

struct Result {
  int devices = 0;
  std::string mode;
  double seconds = 0;
  long long broker_bytes = 0;
  long long payload_bytes = 0;
  double fleetd_cpu = 0;                // all replicas together
  std::vector<double> fleetd_cpu_each;  // per replica
  int updated = 0;
  // Offers of v2 stored / (last offered_at - first): the rollout's pace, phases' settling
  // and gate looks included (a phase's devices are admitted in one tick), not the engine's rate.
  double admitted_per_s = 0;
  double engine_admitted_per_s = 0;  // the phases' devices over their offers' spans
  CpuSplit cpu;                      // over v2
  long long db_bytes = 0;            // pg_database_size after v2
};

// What the ingest said after the telemetry phase (fleetd's /metrics).
struct Ingest {
  double rows_per_s = 0, offered = 0, lag_s = -1, lag_messages = -1, dropped = -1,
         rate_limited = -1;
  // Per second over the same span: PUBLISH packets the broker took in (the devices'
  // windows, nearly all), and windows fleetd's replicas received.
  double broker_publishes_per_s = 0, received_per_s = 0;
  double broker_dropped = -1;  // publishes the broker dropped over the span ($SYS)
  CpuSplit cpu;                // over the span
  double seconds = 0;
};

double metric(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

class Fleet {
 public:
  Fleet(int devices, bool deltas, int replicas, std::string sessions, int sims_nice)
      : n_(devices), sessions_(std::move(sessions)), sims_nice_(sims_nice) {
    dir_ = fs::temp_directory_path() / ("tf-bench-" + std::to_string(getpid()) + "-" +
                                        std::to_string(devices) + (deltas ? "d" : "f"));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const auto unix_now = static_cast<uint64_t>(std::time(nullptr));
    if (!tinyfleet::update::init_keys((dir_ / "keys").string(), unix_now, 30)) {
      throw std::runtime_error("cannot make keys");
    }
    const std::map<std::string, std::string> settings{
        {"mqtt.user", require_env("TINYFLEET_MQTT_SERVER_USER")},
        {"mqtt.password", require_env("TINYFLEET_MQTT_SERVER_PASSWORD")},
        {"mqtt.share_group", "bench" + std::to_string(getpid()) + (deltas ? "d" : "f")},
        {"keys.dir", (dir_ / "keys").string()},
        {"keys.root_public_key_file", (dir_ / "keys" / "root.pub").string()},
        {"updates.deltas", deltas ? "true" : "false"},
        {"rollouts.tick_ms", "200"}};
    for (int i = 0; i < replicas; ++i) {
      fleetd_.push_back(std::make_unique<FleetdProcess>(db_.uri(), admin_, settings));
      fleetd_.back()->start();
    }
  }
  ~Fleet() {
    stop_sims();
    // TINYFLEET_BENCH_KEEP=DIR keeps the run's folder (fleetd and fleet-sim logs) there.
    const char* keep = std::getenv("TINYFLEET_BENCH_KEEP");
    for (size_t i = 0; keep && i < fleetd_.size(); ++i) {
      std::ofstream(dir_ / ("fleetd-" + std::to_string(i) + ".log")) << fleetd_[i]->log();
    }
    fleetd_.clear();
    std::error_code ec;
    if (keep) fs::create_directories(keep, ec);
    if (keep) fs::rename(dir_, fs::path(keep) / dir_.filename(), ec);
    if (!keep || ec) fs::remove_all(dir_);
  }

  std::string fleetctl(const std::string& args, int* exit_code = nullptr) {
    return run("FLEETCTL_ENDPOINT=127.0.0.1:" + std::to_string(fleetd_.front()->port()) +
                   " FLEETCTL_TOKEN=" + admin_ + " FLEETCTL_CONFIG=/nonexistent " +
                   TINYFLEET_FLEETCTL + " " + args + " 2>&1",
               exit_code);
  }
  void must(const std::string& args) {
    int rc = 0;
    const std::string out = fleetctl(args, &rc);
    if (rc != 0) throw std::runtime_error("fleetctl " + args + ": " + out);
  }

  // Classes, devices and two versions of the model, compiled.
  void prepare(const std::string& prefix) {
    must(std::string("classes import ") + TINYFLEET_DEVICE_CLASS_CATALOG);
    const double t = now_s();
    must("devices provision --count " + std::to_string(n_) + " --prefix " + prefix + " --class " +
         kClass + " --tags bench --credentials-out " + (dir_ / "creds").string());
    std::printf("  provisioned %d devices in %.1f s\n", n_, now_s() - t);
    must("models create digits");
    for (const char* m : {"digits_cnn", "digits_cnn_v2"}) {
      must(std::string("versions create digits --onnx ") +
           fixture_path(std::string("models/") + m + ".onnx") + " --calibration " +
           fixture_path("data/digits_calib.npz") + " --validation " +
           fixture_path("data/digits_val.npz") + " --classes " + kClass);
    }
  }

  // fleet-sim processes of up to kPerSim devices; waits until each says it is connected.
  void start_sims(double window_s, double rate) {
    std::ifstream in(dir_ / "creds");
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) {
      if (!l.empty()) lines.push_back(l);
    }
    const std::string broker =
        "tcp://" + require_env("TINYFLEET_MQTT_HOST") + ":" + require_env("TINYFLEET_MQTT_PORT");
    for (size_t first = 0, k = 0; first < lines.size(); first += kPerSim, ++k) {
      const fs::path creds = dir_ / ("creds-" + std::to_string(k));
      std::ofstream out(creds);
      for (size_t i = first; i < std::min(lines.size(), first + kPerSim); ++i) {
        out << lines[i] << "\n";
      }
      out.close();
      const fs::path log = dir_ / ("sim-" + std::to_string(k) + ".log");
      const std::string window = std::to_string(window_s), r = std::to_string(rate);
      // Flushes this process's stdout first (what it printed would come out twice).
      const pid_t pid =
          tinyfleet::testing::spawn_with_stdout({TINYFLEET_FLEET_SIM,
                                                 "--broker",
                                                 broker,
                                                 "--class",
                                                 kClass,
                                                 "--credentials",
                                                 creds.string(),
                                                 "--root-key",
                                                 (dir_ / "keys" / "root.pub").string(),
                                                 "--data",
                                                 fixture_path("data/digits_val.npz"),
                                                 "--rate",
                                                 r,
                                                 "--window",
                                                 window,
                                                 "--probe-every",
                                                 "4",
                                                 "--state",
                                                 (dir_ / ("state-" + std::to_string(k))).string(),
                                                 "--sessions",
                                                 sessions_},
                                                log.string(), sims_nice_);
      if (pid < 0) throw std::runtime_error("fork failed for fleet-sim");
      sims_.push_back({pid, log});
    }
    for (const auto& [pid, log] : sims_) {
      for (int i = 0; i < 1200; ++i) {
        std::ifstream l(log);
        const std::string text((std::istreambuf_iterator<char>(l)),
                               std::istreambuf_iterator<char>());
        if (text.find(" connected") != std::string::npos) break;
        check_broker();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
  // Until each simulator's latest summary (every 5 s) has no device on probation: an
  // offer reaching a device whose new model is on probation waits for it (10 inferences
  // in fleet-sim), which would time the previous model's probation, not the rollout.
  void wait_probation_over(double timeout_s) {
    const double until = now_s() + timeout_s;
    for (const auto& [pid, log] : sims_) {
      while (now_s() < until) {
        std::ifstream l(log);
        const std::string text((std::istreambuf_iterator<char>(l)),
                               std::istreambuf_iterator<char>());
        const auto at = text.rfind("on probation ");
        if (at != std::string::npos && text.compare(at, 15, "on probation 0,") == 0) break;
        check_broker();
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    }
  }
  void stop_sims() {
    for (const auto& s : sims_) kill(s.first, SIGTERM);
    for (const auto& s : sims_) {
      int st = 0;
      waitpid(s.first, &st, 0);
    }
    sims_.clear();
  }

  // Creates the rollout and waits for it to end; its state.
  std::string roll_out(const std::string& name, int version, double timeout_s) {
    must("rollouts create " + name + " --model digits --version " + std::to_string(version) +
         " --tags bench --phases 10:0,50:0,100:0 --rate 1000000 --gates 'failure_rate < 0.05'");
    const double until = now_s() + timeout_s;
    std::string state;
    while (now_s() < until) {
      check_broker();
      const auto r = json::parse(fleetctl("rollouts get " + name + " --json"), nullptr, false);
      state = r.is_object() ? r.value("state", "") : "";
      if (state == "completed") return state;
      if (state == "rolled_back" || state == "aborted" || state == "paused") {
        return state + " (" + r.value("reason", "") + ")";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return "timed out (" + state + ")";
  }

  int count(const std::string& sql) {
    auto r = db_.db().transact([&](pqxx::work& w) { return w.exec1(sql)[0].as<int>(); });
    return r ? *r : -1;
  }
  double number(const std::string& sql) {
    auto r = db_.db().transact([&](pqxx::work& w) { return w.exec1(sql)[0].as<double>(0); });
    return r ? *r : -1;
  }
  // pg_stat_statements, when the stack loaded it (TINYFLEET_PG_STATEMENTS=1): clears its
  // counts; false when it is not there.
  bool statements_reset() {
    auto r = db_.db().transact([&](pqxx::work& w) {
      w.exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
      w.exec("SELECT pg_stat_statements_reset()");
      return true;
    });
    return r && *r;
  }
  // The statements that took most of PostgreSQL's time since statements_reset().
  void print_statements(size_t n) {
    auto rows = db_.db().transact([&](pqxx::work& w) {
      return w.exec_params(
          "SELECT total_exec_time / 1000, calls, rows, left(regexp_replace(query, '\\s+', ' ', "
          "'g'), 90) FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT $1",
          static_cast<int>(n));
    });
    if (!rows) return;
    std::printf("  PostgreSQL's statements since the last reset, by time: %9s %8s %9s  %s\n",
                "seconds", "calls", "rows", "statement");
    for (const auto& r : *rows) {
      std::printf("  %57.2f %8lld %9lld  %s\n", r[0].as<double>(), r[1].as<long long>(),
                  r[2].as<long long>(), r[3].c_str());
    }
  }
  long long payload_bytes(const std::string& rollout) {
    auto r = db_.db().transact([&](pqxx::work& w) {
      return w
          .exec_params1(
              "SELECT COALESCE(SUM(b.size_bytes), 0)::bigint FROM rollout_devices rd JOIN "
              "rollouts r ON r.id = rd.rollout_id JOIN device_offers o ON o.device_id = "
              "rd.device_id JOIN blobs b ON b.sha256 = o.payload_sha256 WHERE r.name = $1",
              rollout)[0]
          .as<long long>();
    });
    return r ? *r : -1;
  }

  // The first error lines of each replica's log (what a drop or a stall was).
  void print_errors(size_t max_lines) const {
    for (size_t i = 0; i < fleetd_.size(); ++i) {
      std::istringstream in(fleetd_[i]->log());
      size_t shown = 0, total = 0;
      for (std::string line; std::getline(in, line);) {
        if (line.find("\"level\":\"error\"") == std::string::npos) continue;
        if (++total <= max_lines) std::printf("  fleetd %zu: %s\n", i, line.substr(0, 400).c_str());
        shown = std::min(total, max_lines);
      }
      if (total > shown) std::printf("  fleetd %zu: %zu error lines in all\n", i, total);
    }
  }
  // What each replica's publisher did with chunk requests (fleetd's own counters).
  void print_publishers() const {
    std::printf("  replica  chunks sent  answers dropped  lookups  lookups refused  deferred\n");
    for (size_t i = 0; i < fleetd_.size(); ++i) {
      const std::string m = fleetd_[i]->scrape_metrics();
      std::printf("  %7zu  %11.0f  %15.0f  %7.0f  %15.0f  %8.0f\n", i,
                  metric(m, R"(tinyfleet_mqtt_messages_out_total{kind="chunk"})"),
                  metric(m, "tinyfleet_update_chunk_answers_dropped_total"),
                  metric(m, R"(tinyfleet_update_payload_lookups_total{outcome="looked_up"})"),
                  metric(m, R"(tinyfleet_update_payload_lookups_total{outcome="refused"})"),
                  metric(m, "tinyfleet_update_chunk_requests_deferred_total"));
    }
  }
  std::vector<double> cpu() const {
    std::vector<double> out;
    for (const auto& f : fleetd_) out.push_back(cpu_seconds(f->pid()));
    return out;
  }
  CpuSplit cpu_split() const {
    CpuSplit c;
    for (double f : cpu()) c.fleetd += f;
    for (const auto& s : sims_) c.sims += cpu_seconds(s.first);
    if (const char* broker = std::getenv("TINYFLEET_MQTT_PID"))
      c.broker = cpu_seconds(std::atoi(broker));
    c.box = box_busy_seconds();
    return c;
  }
  // A metric summed over the replicas (max for a gauge of the oldest, `max` true); -1 when
  // a replica's scrape failed (a sum without it would make a difference over a span wrong).
  double metric_all(const std::string& series, bool max = false) const {
    double total = 0;
    for (const auto& f : fleetd_) {
      const double v = metric(f->scrape_metrics(), series);
      if (v < 0) return -1;
      total = max ? std::max(total, v) : total + v;
    }
    return total;
  }
  ScratchDatabase& db() { return db_; }

 private:
  int n_;
  std::string sessions_;  // fleet-sim --sessions
  int sims_nice_ = 0;     // the simulators' nice value (--sims-nice)
  fs::path dir_;
  const std::string admin_ = "tf_bench_admin_secret_0123456789";
  ScratchDatabase db_;
  std::vector<std::unique_ptr<FleetdProcess>> fleetd_;
  std::vector<std::pair<pid_t, fs::path>> sims_;
};

// Per phase of rollout `name`: its devices, when its first and last offers were stored,
// when the last was published (the broker's PUBACK: device_offers.published_at) and when
// its last device reported the target (seconds from the rollout's creation), and the
// engine's admission rate: the phase's devices over the time from the previous phase's
// last update (the rollout's creation for the first) to the phase's last offer published,
// so the settling, gate look and phase change before it count against the engine.
// Printed; returns the rate over all phases (devices over the sum of those times).
double print_phases(Fleet& fleet, const std::string& name) {
  auto rows = fleet.db().db().transact([&](pqxx::work& w) {
    const auto since = [](const std::string& x) {
      return "EXTRACT(EPOCH FROM " + x + " - r.created_at)";
    };
    return w.exec_params("SELECT rd.phase, count(*), " + since("min(rd.offered_at)") + ", " +
                             since("max(rd.offered_at)") + ", " + since("max(o.published_at)") +
                             ", " + since("max(rd.updated_at_device)") +
                             " FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id "
                             "LEFT JOIN device_offers o ON o.device_id = rd.device_id AND "
                             "o.rollout_id = r.id WHERE r.name = $1 GROUP BY rd.phase, "
                             "r.created_at ORDER BY 1",
                         name);
  });
  if (!rows) {
    std::printf("  (phases not read: %s)\n", rows.error().message.c_str());
    return -1;
  }
  double devices = 0, spent = 0, previous = 0;
  std::printf("  %5s %8s %12s %12s %12s %13s %11s %12s\n", "phase", "devices", "first offer",
              "last offer", "published", "last updated", "admit time", "admitted/s");
  for (const auto& row : *rows) {
    const int n = row[1].as<int>();
    const double first = row[2].as<double>(0), last = row[3].as<double>(0),
                 published = row[4].as<double>(last), updated = row[5].as<double>(0);
    const double admit = std::max(0.001, std::max(last, published) - previous);
    devices += n;
    spent += admit;
    previous = updated;
    std::printf("  %5d %8d %11.2fs %11.2fs %11.2fs %12.2fs %10.2fs %12.0f\n", row[0].as<int>(), n,
                first, last, published, updated, admit, n / admit);
  }
  return spent > 0 ? devices / spent : -1;
}

// How the simulated devices run: fleet-sim's --sessions and their nice value.
struct Sims {
  std::string sessions = "firmware";
  int nice = 0;
};

Result rollout_run(int devices, bool deltas, int replicas, const Sims& sims, bool measure_ingest,
                   Ingest* ingest) {
  Result res;
  res.devices = devices;
  res.mode = deltas ? "delta" : "full artifact";
  std::printf("-- %d devices, %s, %d fleetd, simulators at nice %d\n", devices, res.mode.c_str(),
              replicas, sims.nice);
  std::fflush(stdout);
  Fleet fleet(devices, deltas, replicas, sims.sessions, sims.nice);
  fleet.prepare(deltas ? "d-" : "f-");
  fleet.start_sims(/*window_s=*/30, /*rate=*/0.2);
  // Every device gets version 1 first (its first model: a whole artifact either way).
  const std::string first = fleet.roll_out("v1", 1, 1800);
  std::printf("  v1 to all: %s\n", first.c_str());
  const double p0 = now_s();
  fleet.wait_probation_over(300);
  std::printf("  v1's probation over on every device %.1f s later\n", now_s() - p0);
  const long long b0 = broker_bytes();
  const std::vector<double> c0 = fleet.cpu();
  const CpuSplit split0 = fleet.cpu_split();
  const bool statements = fleet.statements_reset();  // and printed after v2
  const double t0 = now_s();
  const std::string state = fleet.roll_out("v2", 2, 1800);
  res.seconds = now_s() - t0;
  const std::vector<double> c1 = fleet.cpu();
  res.cpu = fleet.cpu_split() - split0;
  for (size_t i = 0; i < c1.size(); ++i) {
    res.fleetd_cpu_each.push_back(c1[i] - c0[i]);
    res.fleetd_cpu += c1[i] - c0[i];
  }
  res.broker_bytes = broker_bytes() - b0;
  res.payload_bytes = fleet.payload_bytes("v2");
  const std::string v2 =
      "FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id WHERE "
      "r.name = 'v2'";
  res.updated = fleet.count("SELECT count(*) " + v2 + " AND rd.state = 'updated'");
  res.admitted_per_s = fleet.number(
      "SELECT count(rd.offered_at) / GREATEST(0.001, EXTRACT(EPOCH FROM max(rd.offered_at) - "
      "min(rd.offered_at)))::float8 " +
      v2);
  res.db_bytes =
      static_cast<long long>(fleet.number("SELECT pg_database_size(current_database())"));
  std::printf("  v2: %s in %.1f s, %d updated, %.0f offered/s over the rollout\n", state.c_str(),
              res.seconds, res.updated, res.admitted_per_s);
  res.engine_admitted_per_s = print_phases(fleet, "v2");
  if (statements) fleet.print_statements(8);
  fleet.print_publishers();
  std::string each;
  for (double c : res.fleetd_cpu_each) each += " " + std::to_string(c).substr(0, 5) + "s";
  std::printf("  fleetd CPU per replica over v2:%s\n", each.c_str());
  const double cores = static_cast<double>(std::thread::hardware_concurrency());
  std::printf(
      "  box CPU over v2: %.1f of %.1f core-seconds busy (%.0f%%): fleetd %.1f s, simulators "
      "%.1f s, broker %.1f s, the rest (PostgreSQL, mostly) %.1f s\n",
      res.cpu.box, cores * res.seconds, 100 * res.cpu.box / (cores * res.seconds), res.cpu.fleetd,
      res.cpu.sims, res.cpu.broker, res.cpu.box - res.cpu.fleetd - res.cpu.sims - res.cpu.broker);
  if (measure_ingest) {
    // Every device publishes a telemetry window each second, of one inference (the
    // simulators' inferences were most of their CPU at two a window). First v2's
    // probation ends everywhere: a simulator stopped while its device is on probation
    // has that device roll back when it starts again (a reset during probation), and
    // those reports (about 2 % of the devices) were applied one device at a time for
    // 25 s into the telemetry span, holding the devices' rows (docs/scale.md).
    const double v2_done = now_s();
    fleet.wait_probation_over(300);
    std::printf("  v2's probation over on every device %.1f s later\n", now_s() - v2_done);
    fleet.stop_sims();
    fleet.start_sims(/*window_s=*/1, /*rate=*/1);
    std::this_thread::sleep_for(std::chrono::seconds(5));  // warm up
    const bool span_statements = fleet.statements_reset();
    const int rows0 = fleet.count("SELECT count(*)::int FROM telemetry");
    const long long pub0 = broker_counter("$SYS/broker/publish/messages/received");
    const long long drop0 = broker_counter("$SYS/broker/publish/messages/dropped");
    const CpuSplit cpu0 = fleet.cpu_split();
    const double cpu_t0 = now_s();
    const char* received = R"(tinyfleet_telemetry_messages_total{outcome="received"})";
    const double got0 = fleet.metric_all(received);
    const double t = now_s();
    double lag_max = 0;
    for (int i = 0; i < 30; ++i) {  // the lag sampled each second; its largest
      std::this_thread::sleep_for(std::chrono::seconds(1));
      lag_max = std::max(lag_max, fleet.metric_all("tinyfleet_telemetry_ingest_lag_seconds", true));
    }
    const int rows1 = fleet.count("SELECT count(*)::int FROM telemetry");
    if (span_statements) fleet.print_statements(8);
    const double span = now_s() - t;
    const long long pub1 = broker_counter("$SYS/broker/publish/messages/received");
    const long long drop1 = broker_counter("$SYS/broker/publish/messages/dropped");
    ingest->cpu = fleet.cpu_split() - cpu0;
    ingest->seconds = now_s() - cpu_t0;  // the CPU's span (the broker was read in between)
    ingest->broker_dropped = drop0 < 0 || drop1 < 0 ? -1 : static_cast<double>(drop1 - drop0);
    ingest->broker_publishes_per_s = pub0 < 0 || pub1 < 0 ? -1 : (pub1 - pub0) / span;
    const double got1 = fleet.metric_all(received);
    ingest->received_per_s = got0 < 0 || got1 < 0 ? -1 : (got1 - got0) / span;
    ingest->rows_per_s = (rows1 - rows0) / span;
    ingest->offered = devices;
    ingest->lag_s = lag_max;
    ingest->lag_messages = fleet.metric_all("tinyfleet_telemetry_ingest_lag_messages");
    ingest->dropped = fleet.metric_all(R"(tinyfleet_telemetry_messages_total{outcome="dropped"})");
    ingest->rate_limited =
        fleet.metric_all(R"(tinyfleet_telemetry_messages_total{outcome="rate_limited"})");
  }
  fleet.print_errors(5);
  std::fflush(stdout);
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes;
  bool deltas_only = false;
  int replicas = 1;
  Sims sims;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--deltas") {
      deltas_only = true;
    } else if (std::string(argv[i]) == "--replicas" && i + 1 < argc) {
      replicas = std::max(1, std::atoi(argv[++i]));
    } else if (std::string(argv[i]) == "--sessions" && i + 1 < argc) {
      sims.sessions = argv[++i];
    } else if (std::string(argv[i]) == "--sims-nice" && i + 1 < argc) {
      sims.nice = std::clamp(std::atoi(argv[++i]), 0, 19);
    } else {
      sizes.push_back(std::atoi(argv[i]));
    }
  }
  if (sizes.empty()) sizes = {1000, 5000};
  std::vector<Result> results;
  Ingest ingest;
  for (size_t s = 0; s < sizes.size(); ++s) {
    for (bool deltas : {false, true}) {
      if (deltas_only && !deltas) continue;
      try {
        results.push_back(rollout_run(sizes[s], deltas, replicas, sims,
                                      deltas && s + 1 == sizes.size(), &ingest));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_rollout_scale: %s\n", e.what());
        return 1;
      }
    }
  }
  std::printf(
      "\nRollout of digits_cnn -> digits_cnn_v2 (%s) to 100%%: whole artifacts against "
      "deltas\n",
      kClass);
  std::printf("%8s  %-14s %8s %10s %9s %11s %11s %14s %14s %12s %10s\n", "devices", "payload",
              "fleetd", "updated", "to 100%", "offered/s", "admitted/s", "broker bytes",
              "payload bytes", "fleetd CPU", "DB MB");
  for (const auto& r : results) {
    std::printf("%8d  %-14s %8zu %10d %8.1fs %11.0f %11.0f %14lld %14lld %11.1fs %10.1f\n",
                r.devices, r.mode.c_str(), r.fleetd_cpu_each.size(), r.updated, r.seconds,
                r.admitted_per_s, r.engine_admitted_per_s, r.broker_bytes, r.payload_bytes,
                r.fleetd_cpu, r.db_bytes / 1e6);
  }
  for (size_t i = 0; !deltas_only && i + 1 < results.size(); i += 2) {
    std::printf("%8d  delta / full: time %.2fx, broker bytes %.2fx, fleetd CPU %.2fx\n",
                results[i].devices, results[i + 1].seconds / results[i].seconds,
                static_cast<double>(results[i + 1].broker_bytes) / results[i].broker_bytes,
                results[i + 1].fleetd_cpu / results[i].fleetd_cpu);
  }
  std::printf(
      "\nTelemetry ingestion at %.0f devices, one window per device per second: "
      "%.0f rows/s into PostgreSQL (offered %.0f msgs/s; the broker took in %.0f publishes/s, "
      "fleetd received %.0f windows/s); ingest lag at most %.1f s (sampled each second), %.0f "
      "messages waiting at the end, %.0f dropped, %.0f rate-limited\n",
      ingest.offered, ingest.rows_per_s, ingest.offered, ingest.broker_publishes_per_s,
      ingest.received_per_s, ingest.lag_s, ingest.lag_messages, ingest.dropped,
      ingest.rate_limited);
  const double cores = static_cast<double>(std::thread::hardware_concurrency());
  std::printf(
      "The broker dropped %.0f publishes over the span. Box CPU: %.1f of %.1f core-seconds busy: "
      "fleetd %.1f s, simulators %.1f s, broker %.1f s, the rest (PostgreSQL, mostly) %.1f s\n",
      ingest.broker_dropped, ingest.cpu.box, cores * ingest.seconds, ingest.cpu.fleetd,
      ingest.cpu.sims, ingest.cpu.broker,
      ingest.cpu.box - ingest.cpu.fleetd - ingest.cpu.sims - ingest.cpu.broker);
  return 0;
}
