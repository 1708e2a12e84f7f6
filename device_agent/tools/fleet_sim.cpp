// fleet-sim: N device agents in one process, each with its own MQTT session, state
// folder, A/B slots and kernels runtime, running the model over a data set and
// publishing telemetry (version 2: class counts of its outputs, channel sums of its
// inputs, probe accuracy, measured active time). For end-to-end tests and load.
//
//   fleet-sim --broker ssl://127.0.0.1:8883 --ca ca.pem --fleet default --class cortex-m4-256k
//             --credentials devices.txt --root-key keys/root.pub --data digits_val.npz
//             [--devices N] [--drift-after SECONDS --drifted digits_drifted_val.npz]
//             [--rate INFERENCES_PER_SECOND] [--window SECONDS] [--duration SECONDS]
//             [--state DIR] [--probe-every K] [--report FILE] [--durable]
//             [--energy-file PATH [--energy-scale N]] [--hang-model SHA256_PREFIX]
//             [--sessions paho|firmware]
//
// --hang-model makes every device's model whose artifact sha256 (hex) starts with the
// prefix hang in each run (self-test and inference) until the device's watchdog
// (linux_port::ProcessWatchdog, --watchdog-ms) resets it: fleet-sim then restarts that
// one device from its folder, as a real device restarts, and its agent rolls back.
//
// --broker may be given several times (the nodes of a broker cluster): every device
// connects to the first and, when a (re)connect fails, tries the others in turn.
// --mqtt-v311 speaks MQTT 3.1.1 instead of 5 (a nats-server MQTT listener needs it).
// --sessions firmware runs each device on the firmware's MQTT 3.1.1 client over a plain
// socket instead of Paho (sim_session.h): a quiet device then costs no CPU, which load
// runs need (ten processes of 1,000 Paho sessions took a core of two with their devices idle).
//
// devices.txt holds "id password" per line (what provisioning returned); the first N
// are simulated. An ssl:// (or mqtts://) broker needs --ca, the CA its certificate must
// chain to (each device pins it); tcp:// is plaintext. SIGINT/SIGTERM stop it cleanly;
// --report writes one JSON line per device.
#include <signal.h>
#include <sodium.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "sim_session.h"
#include "tinyfleet/device_agent/inference_loop.h"
#include "tinyfleet/device_agent/linux/file_energy_meter.h"
#include "tinyfleet/device_agent/linux/file_stores.h"
#include "tinyfleet/device_agent/linux/kernels_runner.h"
#include "tinyfleet/device_agent/linux/process_watchdog.h"
#include "tinyfleet/device_agent/linux/system_clock.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/optimizer_service/device_class.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/update/sodium_crypto.h"

using namespace tinyfleet;
namespace fs = std::filesystem;

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct Options {
  std::string broker, ca, fleet = "default", device_class, credentials, root_key, data, drifted,
                          state = "fleet-sim-state", report,
                          catalog = TINYFLEET_DEVICE_CLASS_CATALOG;
  int devices = 0;
  double rate = 5, window = 5, duration = 0, drift_after = -1;
  int probe_every = 5;
  // The agent's time limits (self-test, inference in probation) in wall-clock ms: a
  // simulated device shares a host core with hundreds of others and may wait for it.
  int time_limit_ms = 10000;
  bool durable = false;
  // An energy counter file every device reads as its meter (a host's hwmon
  // energyN_input, in uJ x energy_scale); none: windows carry modelled energy only.
  std::string energy_file;
  double energy_scale = 1;
  std::string hang_model;             // sha256 hex prefix of an artifact that hangs
  std::vector<std::string> fallback;  // further --broker URIs, tried in turn
  bool mqtt_v311 = false;
  bool firmware_sessions = false;  // --sessions firmware
  int watchdog_ms = 3000;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(
      stderr,
      "fleet-sim: %s\nusage: fleet-sim --broker URI [--broker URI...] [--mqtt-v311] [--ca PEM] "
      "--class C --credentials FILE "
      "--root-key FILE --data NPZ [--devices N] [--fleet F] [--drift-after S "
      "--drifted NPZ] [--rate R] [--window S] [--duration S] [--state DIR] "
      "[--probe-every K] [--report FILE] [--durable] [--catalog JSON] [--time-limit-ms MS] "
      "[--energy-file PATH [--energy-scale N]] [--hang-model SHA256_PREFIX [--watchdog-ms MS]] "
      "[--sessions paho|firmware]\n",
      why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    auto number = [&]() -> double {
      const std::string v = value();
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (!end || *end != '\0') usage((a + " takes a number, not '" + v + "'").c_str());
      return d;
    };
    if (a == "--broker" && o.broker.empty())
      o.broker = value();
    else if (a == "--broker")
      o.fallback.push_back(value());
    else if (a == "--mqtt-v311")
      o.mqtt_v311 = true;
    else if (a == "--sessions") {
      const std::string v = value();
      if (v != "paho" && v != "firmware") usage("--sessions is paho or firmware");
      o.firmware_sessions = v == "firmware";
    } else if (a == "--ca")
      o.ca = value();
    else if (a == "--fleet")
      o.fleet = value();
    else if (a == "--class")
      o.device_class = value();
    else if (a == "--credentials")
      o.credentials = value();
    else if (a == "--root-key")
      o.root_key = value();
    else if (a == "--data")
      o.data = value();
    else if (a == "--drifted")
      o.drifted = value();
    else if (a == "--state")
      o.state = value();
    else if (a == "--report")
      o.report = value();
    else if (a == "--catalog")
      o.catalog = value();
    else if (a == "--devices")
      o.devices = static_cast<int>(number());
    else if (a == "--rate")
      o.rate = number();
    else if (a == "--window")
      o.window = number();
    else if (a == "--duration")
      o.duration = number();
    else if (a == "--drift-after")
      o.drift_after = number();
    else if (a == "--time-limit-ms")
      o.time_limit_ms = static_cast<int>(number());
    else if (a == "--probe-every")
      o.probe_every = static_cast<int>(number());
    else if (a == "--durable")
      o.durable = true;
    else if (a == "--energy-file")
      o.energy_file = value();
    else if (a == "--energy-scale")
      o.energy_scale = number();
    else if (a == "--hang-model")
      o.hang_model = value();
    else if (a == "--watchdog-ms")
      o.watchdog_ms = static_cast<int>(number());
    else
      usage(("unknown option " + a).c_str());
  }
  if (o.broker.empty()) usage("--broker is required");
  const bool tls = o.broker.rfind("ssl://", 0) == 0 || o.broker.rfind("mqtts://", 0) == 0;
  if (tls != !o.ca.empty()) usage("an ssl:// or mqtts:// --broker and --ca go together");
  if (o.device_class.empty()) usage("--class is required");
  if (o.credentials.empty()) usage("--credentials is required");
  if (o.root_key.empty()) usage("--root-key is required");
  if (o.data.empty()) usage("--data is required");
  if (o.rate <= 0 || o.window <= 0) usage("--rate and --window must be positive");
  if (o.drift_after >= 0 && o.drifted.empty()) usage("--drift-after needs --drifted NPZ");
  if (o.energy_scale < 1 ||
      o.energy_scale != static_cast<double>(static_cast<uint64_t>(o.energy_scale))) {
    usage("--energy-scale must be a whole number >= 1");
  }
  return o;
}

struct Samples {
  std::vector<std::vector<float>> x;
  std::vector<int> y;
};

Samples load_samples(const std::string& path) {
  auto npz = optimizer_service::read_npz(path);
  if (!npz || !npz->count("x")) {
    std::fprintf(stderr, "fleet-sim: cannot read samples 'x' from %s\n", path.c_str());
    std::exit(1);
  }
  Samples s;
  const auto& x = npz->at("x");
  for (int64_t i = 0; i < x.shape[0]; ++i) s.x.push_back(optimizer_service::nhwc_sample(x, i));
  if (npz->count("y")) {
    for (double v : npz->at("y").values) s.y.push_back(static_cast<int>(v));
  }
  return s;
}

// Thrown out of a hung run() once the device's watchdog fired: the simulated device
// resets (fleet-sim restarts it from its folder) while the others go on.
struct WatchdogReset {};

// The kernels runner; with --hang-model it never returns from a run of that artifact
// until the watchdog fires (a hung model).
class SimRunner final : public device_agent::ModelRunner {
 public:
  SimRunner(const std::string& hang_prefix, const std::atomic<bool>& reset)
      : hang_prefix_(hang_prefix), reset_(reset) {}
  bool load(const uint8_t* artifact, size_t size, const char** reason) override {
    hangs_ = false;
    if (!hang_prefix_.empty()) {
      unsigned char digest[crypto_hash_sha256_BYTES];
      crypto_hash_sha256(digest, artifact, size);
      char hex[2 * crypto_hash_sha256_BYTES + 1];
      sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
      hangs_ = std::string(hex).rfind(hang_prefix_, 0) == 0;
    }
    return inner_.load(artifact, size, reason);
  }
  size_t input_bytes() const override { return inner_.input_bytes(); }
  size_t output_bytes() const override { return inner_.output_bytes(); }
  float input_scale() const override { return inner_.input_scale(); }
  int32_t input_zero_point() const override { return inner_.input_zero_point(); }
  bool run(const int8_t* input, int8_t* output) override {
    if (hangs_) {
      while (!reset_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      throw WatchdogReset{};
    }
    return inner_.run(input, output);
  }

 private:
  const std::string& hang_prefix_;
  const std::atomic<bool>& reset_;
  device_agent::linux_port::KernelsRunner inner_;
  bool hangs_ = false;
};

// One simulated device: the same agent a real Linux device runs.
struct Device {
  explicit Device(const std::string& hang_prefix)
      : runner_a(hang_prefix, reset), runner_b(hang_prefix, reset) {}
  std::string id, password;
  device_agent::AgentConfig config;
  device_agent::InferenceConfig inference;
  std::unique_ptr<device_agent::linux_port::FileRecordStore> records;
  std::unique_ptr<device_agent::linux_port::FileSlotStore> slots;
  // Set when pump() has something for the agent (by Paho's thread, or the Waker when the
  // device's socket is readable); the loop also pumps every kPumpEveryUs for the agent's
  // own timers (chunk timeouts) and the client's keep-alive. Declared before the session,
  // which sets it until it is gone.
  std::atomic<bool> woken{true};
  std::unique_ptr<fleet_sim::SimSession> port;
  std::atomic<bool> reset{false};  // set by the watchdog's reset hook
  std::unique_ptr<device_agent::linux_port::ProcessWatchdog> watchdog;
  SimRunner runner_a, runner_b;
  std::unique_ptr<device_agent::UpdateAgent> agent;
  std::unique_ptr<device_agent::InferenceLoop> loop;
  size_t next_sample = 0;
  uint64_t next_inference_us = 0;
  uint64_t next_pump_us = 0;
};

// How often a quiet device's port is pumped anyway, and how long the loop sleeps at most
// when nothing woke it. Pumping 1,000 sessions on every 2 ms pass had each fleet-sim
// process spin: ten of them took most of a 2-core box from fleetd and the broker.
constexpr uint64_t kPumpEveryUs = 50'000;
constexpr auto kMaxSleep = std::chrono::milliseconds(5);

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (sodium_init() < 0) return 1;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  // One socket per device: raise the descriptor limit as far as allowed.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  std::string catalog_json;
  {
    std::ifstream in(o.catalog);
    catalog_json.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto classes = optimizer_service::parse_catalog(catalog_json);
  if (!classes) usage(("cannot read the class catalog " + o.catalog).c_str());
  const optimizer_service::DeviceClass* cls = nullptr;
  for (const auto& c : *classes) {
    if (c.name == o.device_class) cls = &c;
  }
  if (!cls) usage(("unknown device class '" + o.device_class + "'").c_str());

  std::string root;
  {
    std::ifstream in(o.root_key, std::ios::binary);
    root.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (root.size() != 32) usage(("the root key " + o.root_key + " is not 32 bytes").c_str());

  std::vector<std::pair<std::string, std::string>> accounts;
  {
    std::ifstream in(o.credentials);
    std::string id, password;
    while (in >> id >> password) accounts.emplace_back(id, password);
  }
  const int n = o.devices > 0 ? o.devices : static_cast<int>(accounts.size());
  if (n == 0 || static_cast<size_t>(n) > accounts.size()) {
    usage(("--devices " + std::to_string(n) + " but " + o.credentials + " has " +
           std::to_string(accounts.size()) + " accounts")
              .c_str());
  }
  const Samples clean = load_samples(o.data);
  const Samples drifted = o.drift_after >= 0 ? load_samples(o.drifted) : Samples{};

  // The Linux clock port: CLOCK_MONOTONIC, also the measured active time of each run.
  device_agent::linux_port::SystemClock clock;
  std::unique_ptr<device_agent::linux_port::FileEnergyMeter> meter;
  if (!o.energy_file.empty()) {
    meter = std::make_unique<device_agent::linux_port::FileEnergyMeter>(
        o.energy_file, static_cast<uint64_t>(o.energy_scale));
  }
  update::SodiumVerifier verifier;
  update::SodiumSha256 sha;
  // Patching runs to completion inside one call on this one thread: one workspace serves all.
  constexpr uint32_t kWindowLog = 17;
  std::vector<uint8_t> workspace(update::DeltaDecoder::workspace_size(kWindowLog));
  fleet_sim::Waker wakeup;  // outlives the devices, whose sessions call it
  std::vector<std::unique_ptr<Device>> devices;
  // (Re)starts a device's agent from its folder: at start, and after a watchdog reset.
  auto start_agent = [&](Device& d, bool fresh) {
    d.loop.reset();
    d.agent = std::make_unique<device_agent::UpdateAgent>(
        d.config, *d.records, *d.slots, clock, d.port->outbox(), verifier, sha, d.runner_a,
        d.runner_b, workspace.data(), workspace.size());
    d.agent->set_watchdog(d.watchdog.get());
    if (fresh) d.agent->provision_empty();  // a new device without a model: first offer full
    d.reset = false;
    d.agent->boot();
    d.loop = std::make_unique<device_agent::InferenceLoop>(d.inference, *d.agent, clock,
                                                           d.port->outbox(), meter.get());
    d.port->attach(d.agent.get());
  };
  int resets = 0;
  std::mt19937 rng(42);
  const uint64_t period_us = static_cast<uint64_t>(1e6 / o.rate);
  int connected = 0;
  for (int i = 0; i < n && !g_stop; ++i) {
    auto d = std::make_unique<Device>(o.hang_model);
    d->id = accounts[static_cast<size_t>(i)].first;
    d->password = accounts[static_cast<size_t>(i)].second;
    const fs::path dir = fs::path(o.state) / d->id;
    fs::create_directories(dir);
    d->config.fleet = o.fleet.c_str();
    d->config.device_id = d->id.c_str();
    d->config.device_class = cls->name.c_str();
    d->config.root_public_key = reinterpret_cast<const uint8_t*>(root.data());
    d->config.window_log = kWindowLog;
    d->config.probation_inferences = 10;
    d->config.self_test_timeout_ms = static_cast<uint32_t>(o.time_limit_ms);
    d->config.inference_timeout_ms = static_cast<uint32_t>(o.time_limit_ms);
    d->inference.clock_hz = cls->clock_hz;
    d->inference.active_mw = static_cast<float>(cls->active_mw);
    d->inference.window_ms = static_cast<uint32_t>(o.window * 1000);
    d->records =
        std::make_unique<device_agent::linux_port::FileRecordStore>(dir.string(), o.durable);
    d->slots = std::make_unique<device_agent::linux_port::FileSlotStore>(dir.string(), o.durable);
    const fleet_sim::SessionConfig session{o.broker, o.fallback, o.ca,       o.mqtt_v311,
                                           o.fleet,  d->id,      d->password};
    if (o.firmware_sessions) {
      std::string why;
      d->port = fleet_sim::firmware_session(session, wakeup, d->woken, &why);
      if (!d->port) usage(why.c_str());
    } else {
      d->port = fleet_sim::paho_session(session, wakeup, d->woken);
    }
    if (!o.hang_model.empty()) {
      d->config.watchdog_timeout_ms = static_cast<uint32_t>(o.watchdog_ms);
      Device* raw = d.get();
      d->watchdog = std::make_unique<device_agent::linux_port::ProcessWatchdog>(
          dir.string(), [raw] { raw->reset = true; });
    }
    const bool fresh = !fs::exists(dir / "agent-state");
    start_agent(*d, fresh);
    d->port->start();  // sessions come up in parallel
    d->next_sample = rng() % clean.x.size();
    d->next_inference_us = clock.monotonic_us() + rng() % period_us;
    devices.push_back(std::move(d));
  }
  // A hung model (a self-test in pump(), or an inference) reset the device: its agent
  // starts again from its folder and announces itself.
  auto reset = [&](Device& d) {
    ++resets;
    std::printf("fleet-sim: %s reset by its watchdog (a hung model)\n", d.id.c_str());
    start_agent(d, false);
    d.agent->on_reconnect();
  };
  // Pumps a device's session (a firmware session connects only while pumped).
  auto pump = [&](Device& d, bool readable) {
    try {
      return d.port->pump(readable);
    } catch (const WatchdogReset&) {
      reset(d);
      return 1;
    }
  };
  // Wait (up to a minute) for the sessions; a device still down keeps retrying on its own.
  for (auto until = std::chrono::steady_clock::now() + std::chrono::minutes(1);
       !g_stop && std::chrono::steady_clock::now() < until;) {
    connected = 0;
    for (auto& d : devices) {
      if (o.firmware_sessions) pump(*d, d->woken.exchange(false));
      connected += d->port->connected() ? 1 : 0;
    }
    if (connected == static_cast<int>(devices.size())) break;
    wakeup.sleep(std::chrono::milliseconds(o.firmware_sessions ? 5 : 100));
  }
  if (connected < static_cast<int>(devices.size()))
    std::fprintf(stderr, "fleet-sim: %d of %zu devices not connected yet (they keep retrying)\n",
                 static_cast<int>(devices.size()) - connected, devices.size());
  std::printf("fleet-sim: %d devices of class %s, %d connected\n", n, cls->name.c_str(), connected);
  std::fflush(stdout);

  const uint64_t start_us = clock.monotonic_us();
  uint64_t next_summary_us = start_us + 5000000;
  while (!g_stop) {
    const uint64_t now = clock.monotonic_us();
    const double elapsed = static_cast<double>(now - start_us) / 1e6;
    if (o.duration > 0 && elapsed >= o.duration) break;
    const bool drift = o.drift_after >= 0 && elapsed >= o.drift_after;
    const Samples& data = drift ? drifted : clean;
    bool busy = false;
    for (auto& d : devices) {
      const bool woken = d->woken.exchange(false);
      bool due = woken || now >= d->next_pump_us;
      if (due) {
        d->next_pump_us = now + kPumpEveryUs;
        busy |= pump(*d, woken) > 0;  // a self-test runs in here
      }
      try {
        if (now >= d->next_inference_us) {
          const size_t i = d->next_sample++ % data.x.size();
          const bool probe =
              o.probe_every > 0 && i % static_cast<size_t>(o.probe_every) == 0 && i < data.y.size();
          d->loop->infer(data.x[i].data(), data.x[i].size(), probe ? data.y[i] : -1);
          d->next_inference_us += period_us;
          if (d->next_inference_us < now) d->next_inference_us = now + period_us;  // fell behind
          busy = due = true;
        }
        // Closes a telemetry window when its time is up and sends what is pending: on
        // every pump (at least each kPumpEveryUs) is often enough.
        if (due) d->loop->poll();
      } catch (const WatchdogReset&) {
        reset(*d);
      }
    }
    if (now >= next_summary_us) {
      next_summary_us = now + 5000000;
      std::map<std::string, int> by_model;  // first 8 hex digits of the installed sha256
      int updating = 0, online = 0, probation = 0;
      for (auto& d : devices) {
        const auto& rec = d->agent->record();
        char model[9] = "none";
        if (rec.installed_release != 0) {
          for (int i = 0; i < 4; ++i)
            std::snprintf(model + 2 * i, 3, "%02x", rec.installed_sha256[i]);
        }
        ++by_model[model];
        const auto s = d->agent->state();
        updating +=
            s >= device_agent::UpdateState::kOffered && s <= device_agent::UpdateState::kSelfTest;
        online += d->port->connected() ? 1 : 0;
        probation += rec.probation_left > 0 ? 1 : 0;
      }
      std::printf(
          "fleet-sim: t=%.0fs%s online %d, updating %d, on probation %d, watchdog resets %d; "
          "devices by model:",
          elapsed, drift ? " (drifted inputs)" : "", online, updating, probation, resets);
      for (const auto& [m, count] : by_model) std::printf(" %s=%d", m.c_str(), count);
      std::printf("\n");
      std::fflush(stdout);
    }
    // Busy: only collect the sockets that became readable (firmware sessions).
    wakeup.sleep(busy ? std::chrono::milliseconds(0) : kMaxSleep);
  }

  if (!o.report.empty()) {
    std::ofstream out(o.report);
    for (auto& d : devices) {
      const auto& r = d->agent->record();
      char sha_hex[65] = "";
      for (int i = 0; i < 32; ++i) std::snprintf(sha_hex + 2 * i, 3, "%02x", r.installed_sha256[i]);
      out << "{\"device\":\"" << d->id << "\",\"state\":\"" << update::to_string(r.state)
          << "\",\"release\":" << r.installed_release << ",\"artifact\":\""
          << (r.active_slot == device_agent::kNoSlot ? "" : sha_hex)
          << "\",\"failed_release\":" << r.failed_release
          << ",\"chunk_retries\":" << d->agent->chunk_retries()
          << ",\"chunk_retries_in_row_max\":" << d->agent->chunk_retries_in_row_max()
          << ",\"windows_sent\":" << d->loop->windows_sent()
          << ",\"windows_pending\":" << d->loop->pending().size() << "}\n";
    }
  }
  // Each session says "offline" and waits for its acknowledgement; after 5 s in all (a
  // broker that stopped answering would hold 1,000 devices 2 s each), the rest just drop
  // their links and the broker publishes their wills.
  const auto clean_until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (auto& d : devices) d->port->stop(std::chrono::steady_clock::now() < clean_until);
  devices.clear();
  std::printf("fleet-sim: stopped\n");
  return 0;
}
