// Inference and telemetry on the device: the agent runs a real compiled model (kernels
// runtime) over the digits data, publishes windows with latency, energy, PSI, input
// drift, probe accuracy and shadow agreement; windows wait in a bounded ring while
// offline; a new model that crashes while on probation is rolled back.
#include <gtest/gtest.h>
#include <sodium.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tinyfleet/device_agent/inference_loop.h"
#include "tinyfleet/device_agent/linux/file_energy_meter.h"
#include "tinyfleet/device_agent/linux/file_stores.h"
#include "tinyfleet/device_agent/linux/kernels_runner.h"
#include "tinyfleet/device_agent/linux/system_clock.h"
#include "tinyfleet/device_agent/telemetry.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/update_fixtures.h"
#include "tinyfleet/update/delta_encoder.h"
#include "tinyfleet/update/offer_signer.h"
#include "tinyfleet/update/sodium_crypto.h"
#include "tinyfleet/update/update_keys.h"

using namespace tinyfleet;
using device_agent::UpdateState;
using tinyfleet::testing::fixture_path;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr uint64_t kNow = 1795305600;

using tinyfleet::testing::sha256;

// Time moves only when the test says so.
struct ManualClock : device_agent::Clock {
  uint64_t now_unix() override { return kNow + ms / 1000; }
  uint64_t monotonic_ms() override { return ms; }
  uint64_t monotonic_us() override { return ms * 1000 + (++tick) * 3; }  // 3 us a call
  uint64_t ms = 1000, tick = 0;
};

// What the agent sent, decoded with update/'s decoders: a status's detail, and each
// telemetry window as JSON (the fields the assertions read).
struct Mailbox : device_agent::Outbox {
  bool publish_status(const uint8_t* message, size_t size) override {
    update::StatusMessage m;
    EXPECT_TRUE(update::decode_status(message, size, &m).ok());
    statuses.emplace_back(m.detail);
    return true;
  }
  bool request_chunk(uint64_t release, uint64_t offset, uint32_t length) override {
    requests.push_back({release, offset, length});
    return true;
  }
  bool publish_telemetry(const uint8_t* message, size_t size) override {
    if (!online) return false;
    update::TelemetryMessage t;
    EXPECT_TRUE(update::decode_telemetry(message, size, &t).ok());
    json j = {{"seq", t.seq},
              {"release", t.release},
              {"inferences", t.inferences},
              {"latency_p95_us", t.latency_p95_us},
              {"energy_uj", t.energy_uj},
              {"output_psi", t.output_psi},
              {"input_drift", t.input_drift},
              {"shadow", t.shadow},
              {"version", t.version},
              {"failures", t.failures},
              {"class_counts", std::vector<uint32_t>(t.class_counts, t.class_counts + t.classes)},
              {"input_count", t.input_count},
              {"input_sum", std::vector<double>(t.input_sum, t.input_sum + t.channels)},
              {"input_sumsq", std::vector<double>(t.input_sumsq, t.input_sumsq + t.channels)},
              {"latency_hist", std::vector<uint32_t>(t.latency_hist, t.latency_hist + 24)},
              {"active_us", t.active_us},
              {"energy_modelled_uj", t.energy_modelled_uj}};
    if (t.flags & update::kTelemetryEnergyMeasured) j["energy_measured_uj"] = t.energy_measured_uj;
    if (t.probes > 0) j["probe_accuracy"] = static_cast<double>(t.probes_correct) / t.probes;
    if (t.shadow > 0) j["shadow_agreement"] = static_cast<double>(t.shadow_agree) / t.shadow;
    telemetry.push_back(j);
    return true;
  }
  struct Request {
    uint64_t release, offset;
    uint32_t length;
  };
  std::deque<Request> requests;
  std::vector<std::string> statuses;
  std::vector<json> telemetry;
  bool online = true;
};

struct Data {
  std::vector<std::vector<float>> x;
  std::vector<int> y;
};
Data load(const std::string& name) {
  auto npz = optimizer_service::read_npz(fixture_path("data/" + name + ".npz"));
  EXPECT_TRUE(npz);
  Data d;
  const auto& x = npz->at("x");
  const auto& y = npz->at("y");
  for (int64_t i = 0; i < x.shape[0]; ++i) {
    d.x.push_back(optimizer_service::nhwc_sample(x, i));
    d.y.push_back(static_cast<int>(y.values[static_cast<size_t>(i)]));
  }
  return d;
}

optimizer_service::CompiledModel compile(const std::string& model) {
  auto onnx = optimizer_service::read_file(fixture_path("models/" + model + ".onnx"));
  auto calib = optimizer_service::read_npz(fixture_path("data/digits_calib.npz"));
  auto val = optimizer_service::read_npz(fixture_path("data/digits_val.npz"));
  EXPECT_TRUE(onnx && calib && val);
  auto c = optimizer_service::compile_model(*onnx, *calib, &*val, {});
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return *c;
}

class TelemetryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    dir_ = fs::temp_directory_path() /
           ("tf-telemetry-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "device");
    key_ = update::init_keys((dir_ / "keys").string(), kNow, 30).value();
    root_ = update::load_root_public_key((dir_ / "keys").string()).value();
    v1_ = compile("digits_cnn");
    config_.device_class = "cortex-m4-256k";
    config_.root_public_key = reinterpret_cast<const uint8_t*>(root_.data());
    config_.probation_inferences = 5;
    config_.device_id = tinyfleet::testing::kTestDeviceId;
    workspace_.resize(update::DeltaDecoder::workspace_size(17));
    make_agent();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A (re)boot of the same device on the same folder.
  void make_agent() {
    agent_.reset();
    records_ =
        std::make_unique<device_agent::linux_port::FileRecordStore>((dir_ / "device").string());
    slots_ = std::make_unique<device_agent::linux_port::FileSlotStore>((dir_ / "device").string());
    runner_a_ = std::make_unique<device_agent::linux_port::KernelsRunner>();
    runner_b_ = std::make_unique<device_agent::linux_port::KernelsRunner>();
    agent_ = std::make_unique<device_agent::UpdateAgent>(config_, *records_, *slots_, clock_, mail_,
                                                         verifier_, sha_, *runner_a_, *runner_b_,
                                                         workspace_.data(), workspace_.size());
  }

  // Offers `target` as `release` (a delta from `base`, or full), serves it, returns the state.
  UpdateState update(const optimizer_service::CompiledModel& target, const std::string& base,
                     uint64_t release, uint64_t cycles) {
    auto d = base.empty()
                 ? update::encode_full(target.artifact, {})
                 : update::encode_best(base, target.artifact, update::artifact_segments(base),
                                       update::artifact_segments(target.artifact), {});
    EXPECT_TRUE(d);
    auto f = tinyfleet::testing::manifest_for(base, target.artifact, *d, release, 512, kNow + 3600);
    const auto& b = target.report.drift_baseline;
    f.class_histogram = b.class_histogram;
    f.channel_mean = b.channel_mean;
    f.channel_std = b.channel_std;
    f.modelled_cycles = cycles;
    const std::string offer = update::sign_offer(f, key_);
    agent_->on_offer(reinterpret_cast<const uint8_t*>(offer.data()), offer.size());
    while (!mail_.requests.empty()) {
      auto r = mail_.requests.front();
      mail_.requests.pop_front();
      const auto n = std::min<size_t>(r.length, d->payload.size() - r.offset);
      agent_->on_chunk(r.release, r.offset,
                       reinterpret_cast<const uint8_t*>(d->payload.data()) + r.offset, n);
    }
    return agent_->state();
  }

  // Runs every sample once (every 5th as a probe) and closes one window.
  void run_window(device_agent::InferenceLoop& loop, const Data& data) {
    for (size_t i = 0; i < data.x.size(); ++i) {
      loop.infer(data.x[i].data(), data.x[i].size(), i % 5 == 0 ? data.y[i] : -1);
    }
    clock_.ms += 10000;
    loop.poll();
  }

  fs::path dir_;
  update::TargetsKey key_;
  std::string root_;
  optimizer_service::CompiledModel v1_;
  device_agent::AgentConfig config_;
  ManualClock clock_;
  Mailbox mail_;
  update::SodiumVerifier verifier_;
  update::SodiumSha256 sha_;
  std::vector<uint8_t> workspace_;
  std::unique_ptr<device_agent::linux_port::FileRecordStore> records_;
  std::unique_ptr<device_agent::linux_port::FileSlotStore> slots_;
  std::unique_ptr<device_agent::linux_port::KernelsRunner> runner_a_, runner_b_;
  std::unique_ptr<device_agent::UpdateAgent> agent_;
};

TEST(Telemetry, PopulationStabilityAndTheRing) {
  const float baseline[4] = {0.25f, 0.25f, 0.25f, 0.25f};
  const uint32_t same[4] = {25, 25, 25, 25};
  const uint32_t skewed[4] = {85, 5, 5, 5};
  EXPECT_NEAR(device_agent::population_stability(same, baseline, 4), 0.0, 1e-6);
  EXPECT_GT(device_agent::population_stability(skewed, baseline, 4), 0.5);
  const uint32_t none[4] = {0, 0, 0, 0};
  EXPECT_LT(device_agent::population_stability(none, baseline, 4), 0);

  // The ring keeps encoded windows: version-2 windows with 10 classes and 3 channels
  // are 321 bytes (+2 of length), so 16 KB holds 50 of them; the oldest go first.
  device_agent::TelemetryRing ring;
  auto window = [](uint64_t seq) {
    device_agent::TelemetryWindow w;
    w.seq = seq;
    w.classes = 10;
    w.channels = 3;
    w.input_count = 1;
    return w;
  };
  const size_t fits = device_agent::TelemetryRing::kBytes / 323;
  for (uint64_t i = 1; i <= fits + 3; ++i) ASSERT_TRUE(ring.push(window(i)));
  EXPECT_EQ(ring.size(), fits);
  EXPECT_EQ(ring.dropped(), 3u);
  size_t size = 0;
  const uint8_t* front = ring.front(&size);
  EXPECT_EQ(size, 321u);
  device_agent::TelemetryWindow back;
  ASSERT_TRUE(update::decode_telemetry(front, size, &back).ok());
  EXPECT_EQ(back.seq, 4u);  // the oldest went first
  for (uint64_t expect = 4; !ring.empty(); ++expect) {
    front = ring.front(&size);
    ASSERT_TRUE(update::decode_telemetry(front, size, &back).ok());
    EXPECT_EQ(back.seq, expect);
    ring.pop();
  }
  // Nothing larger than the ring goes in.
  std::vector<uint8_t> huge(device_agent::TelemetryRing::kBytes);
  EXPECT_FALSE(ring.push(huge.data(), huge.size()));
  EXPECT_TRUE(ring.empty());
}

TEST_F(TelemetryTest, WindowsCarryAccuracyDriftEnergyAndWaitWhileOffline) {
  ASSERT_TRUE(agent_->provision_empty());
  EXPECT_FALSE(agent_->boot());  // no model yet
  ASSERT_EQ(update(v1_, "", 1, 250000), UpdateState::kCommitted) << agent_->record().reason;
  device_agent::InferenceConfig ic;
  ic.clock_hz = 80000000;
  ic.active_mw = 30.0f;
  const uint64_t boot = clock_.now_unix();
  device_agent::InferenceLoop loop(ic, *agent_, clock_, mail_);
  const Data clean = load("digits_val"), drifted = load("digits_drifted_val");

  mail_.online = false;
  run_window(loop, clean);
  run_window(loop, clean);
  run_window(loop, drifted);
  EXPECT_TRUE(mail_.telemetry.empty());
  EXPECT_EQ(loop.pending().size(), 3u);
  mail_.online = true;
  loop.flush();
  ASSERT_EQ(mail_.telemetry.size(), 3u);
  EXPECT_TRUE(loop.pending().empty());
  // In order, from the boot's second x 2^20 (increasing across restarts).
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(mail_.telemetry[i]["seq"], (boot << 20) + i + 1);

  const json& c = mail_.telemetry[0];
  const json& d = mail_.telemetry[2];
  EXPECT_EQ(c["inferences"], clean.x.size());
  EXPECT_EQ(c["release"], 1);
  // The int8 model on the runtime is about as accurate as the float one (0.9777).
  EXPECT_GT(c["probe_accuracy"].get<double>(), 0.9);
  // 250,000 cycles at 80 MHz and 30 mW: 93.75 uJ per inference.
  EXPECT_NEAR(c["energy_uj"].get<double>(), 93.75, 0.01);
  EXPECT_GT(c["latency_p95_us"].get<double>(), 0);
  // The clean validation set is the baseline: little drift. The shifted one: more.
  EXPECT_LT(c["output_psi"].get<double>(), 0.1);
  EXPECT_LT(c["input_drift"].get<double>(), 0.05);
  EXPECT_GT(d["input_drift"].get<double>(), 3 * c["input_drift"].get<double>() + 0.03);
  EXPECT_GT(d["output_psi"].get<double>(), 5 * c["output_psi"].get<double>());
  EXPECT_LT(d["probe_accuracy"].get<double>(), c["probe_accuracy"].get<double>());
  // Version 2: the sufficient statistics of the same windows.
  EXPECT_EQ(c["version"], 2);
  EXPECT_EQ(c["failures"], 0);
  uint64_t counted = 0;
  for (uint64_t n : c["class_counts"]) counted += n;
  EXPECT_EQ(counted, clean.x.size());        // every inference in one class
  EXPECT_EQ(c["class_counts"].size(), 10u);  // the baseline's classes (digits)
  uint64_t largest = 0;                      // the most common class is not all of them
  for (uint64_t n : c["class_counts"]) largest = std::max(largest, n);
  EXPECT_LT(largest, clean.x.size() / 2);
  EXPECT_EQ(c["input_count"], clean.x.size());
  ASSERT_FALSE(c["input_sum"].empty());
  for (size_t ch = 0; ch < c["input_sum"].size(); ++ch) {
    // Var = E[x^2] - E[x]^2 >= 0, and the drifted data moved the mean.
    const double n = clean.x.size();
    const double mean = c["input_sum"][ch].get<double>() / n;
    EXPECT_GE(c["input_sumsq"][ch].get<double>() / n - mean * mean, -1e-9);
    EXPECT_NE(d["input_sum"][ch].get<double>(), c["input_sum"][ch].get<double>());
  }
  uint64_t in_hist = 0;
  for (uint64_t n : c["latency_hist"]) in_hist += n;
  EXPECT_EQ(in_hist, clean.x.size());
  // The manual clock moves 3 us between the two reads around each run.
  EXPECT_EQ(c["active_us"], 3 * clean.x.size());
  EXPECT_NEAR(c["energy_modelled_uj"].get<double>(), 93.75 * clean.x.size(), 0.01);
  EXPECT_FALSE(c.contains("energy_measured_uj"));  // no meter
  std::printf("clean: psi %.4f drift %.4f acc %.3f; drifted: psi %.4f drift %.4f acc %.3f\n",
              c["output_psi"].get<double>(), c["input_drift"].get<double>(),
              c["probe_accuracy"].get<double>(), d["output_psi"].get<double>(),
              d["input_drift"].get<double>(), d["probe_accuracy"].get<double>());
}

// One-second windows polled up to 40 ms late close on their cadence: ten in ten seconds
// (closing each at the late poll and starting the next then, the loop sent five). After
// a stall of several windows, one window closes and the cadence starts again from then.
TEST_F(TelemetryTest, WindowsKeepTheirCadenceWhenPolledLate) {
  ASSERT_TRUE(agent_->provision_empty());
  EXPECT_FALSE(agent_->boot());
  ASSERT_EQ(update(v1_, "", 1, 250000), UpdateState::kCommitted) << agent_->record().reason;
  device_agent::InferenceConfig ic;
  ic.window_ms = 1000;
  const uint64_t t0 = clock_.ms;
  device_agent::InferenceLoop loop(ic, *agent_, clock_, mail_);
  const Data clean = load("digits_val");
  for (uint64_t k = 1; k <= 10; ++k) {
    loop.infer(clean.x[k].data(), clean.x[k].size(), -1);
    clock_.ms = t0 + k * 1000 + (k % 2 == 1 ? 40 : 0);
    loop.poll();
  }
  EXPECT_EQ(mail_.telemetry.size(), 10u);
  // A stall of 5.5 windows: one window, and the next a window after the late poll.
  loop.infer(clean.x[0].data(), clean.x[0].size(), -1);
  clock_.ms += 5500;
  loop.poll();
  EXPECT_EQ(mail_.telemetry.size(), 11u);
  loop.infer(clean.x[1].data(), clean.x[1].size(), -1);
  clock_.ms += 999;
  loop.poll();
  EXPECT_EQ(mail_.telemetry.size(), 11u);
  clock_.ms += 1;
  loop.poll();
  EXPECT_EQ(mail_.telemetry.size(), 12u);
}

TEST_F(TelemetryTest, AnEnergyMeterFileIsCountedPerWindow) {
  ASSERT_TRUE(agent_->provision_empty());
  ASSERT_EQ(update(v1_, "", 1, 250000), UpdateState::kCommitted) << agent_->record().reason;
  const std::string counter = (dir_ / "energy_uj").string();
  auto write = [&](const std::string& text) { std::ofstream(counter, std::ios::trunc) << text; };
  write("1000000\n");
  device_agent::linux_port::FileEnergyMeter meter(counter);
  device_agent::InferenceLoop loop({}, *agent_, clock_, mail_, &meter);
  const Data clean = load("digits_val");
  write("1250000\n");
  run_window(loop, clean);  // 250,000 uJ over the window
  write("1250500");         // no newline is fine: 500 uJ
  run_window(loop, clean);
  write("900");  // the counter went back (reset): nothing measured this window
  run_window(loop, clean);
  write("garbage");  // unreadable: absent, and the next window has no start either
  run_window(loop, clean);
  write("1000");
  run_window(loop, clean);
  write("4000");
  run_window(loop, clean);
  ASSERT_EQ(mail_.telemetry.size(), 6u);
  EXPECT_EQ(mail_.telemetry[0]["energy_measured_uj"], 250000.0);
  EXPECT_EQ(mail_.telemetry[1]["energy_measured_uj"], 500.0);
  EXPECT_FALSE(mail_.telemetry[2].contains("energy_measured_uj"));
  EXPECT_FALSE(mail_.telemetry[3].contains("energy_measured_uj"));
  EXPECT_FALSE(mail_.telemetry[4].contains("energy_measured_uj"));
  EXPECT_EQ(mail_.telemetry[5]["energy_measured_uj"], 3000.0);
  // The meter is the measured figure; the modelled one is the compiler's (no power
  // model here: 0).
  EXPECT_EQ(mail_.telemetry[0]["energy_modelled_uj"], 0.0);

  device_agent::linux_port::FileEnergyMeter missing((dir_ / "absent").string());
  uint64_t v = 0;
  EXPECT_FALSE(missing.read_uj(&v));
  write("18446744073709551616");  // 2^64
  EXPECT_FALSE(meter.read_uj(&v));
  write("12 34");
  EXPECT_FALSE(meter.read_uj(&v));
  write("7\n");
  device_agent::linux_port::FileEnergyMeter scaled(counter, 1000);
  ASSERT_TRUE(scaled.read_uj(&v));
  EXPECT_EQ(v, 7000u);
}

TEST(Telemetry, SystemClockMeasuresActiveTime) {
  device_agent::linux_port::SystemClock clock;
  const uint64_t a = clock.active_ns();
  usleep(20000);
  const uint64_t b = clock.active_ns();
  EXPECT_GE(b - a, 20000000u);
  EXPECT_LT(b - a, 2000000000u);
  EXPECT_GE(clock.monotonic_ms(), a / 1000000);
  EXPECT_GT(clock.now_unix(), 1700000000u);
}

TEST_F(TelemetryTest, ShadowModeComparesTheOldAndNewModels) {
  ASSERT_TRUE(agent_->provision_empty());
  ASSERT_EQ(update(v1_, "", 1, 0), UpdateState::kCommitted);
  device_agent::InferenceConfig ic;
  ic.shadow_inferences = 40;
  device_agent::InferenceLoop loop(ic, *agent_, clock_, mail_);
  const Data clean = load("digits_val");
  for (int i = 0; i < 10; ++i)
    loop.infer(clean.x[i].data(), clean.x[i].size(), -1);  // passes probation
  ASSERT_EQ(agent_->record().probation_left, 0u);
  const auto v2 = compile("digits_cnn_v2");
  ASSERT_EQ(update(v2, v1_.artifact, 2, 0), UpdateState::kCommitted);
  ASSERT_NE(agent_->shadow(), nullptr);
  run_window(loop, clean);
  ASSERT_EQ(mail_.telemetry.size(), 1u);
  const json& w = mail_.telemetry[0];
  EXPECT_EQ(w["release"], 2);
  EXPECT_EQ(w["shadow"], 40);  // the first N inferences after the switch
  // Five more epochs of training change no validation prediction (models/README.md).
  EXPECT_GT(w["shadow_agreement"].get<double>(), 0.95);
  EXPECT_EQ(agent_->shadow(), nullptr);  // shadow mode ended
}

TEST_F(TelemetryTest, ANewModelThatCrashesOnProbationIsRolledBack) {
  ASSERT_TRUE(agent_->provision_empty());
  ASSERT_EQ(update(v1_, "", 1, 0), UpdateState::kCommitted);
  device_agent::InferenceLoop loop({}, *agent_, clock_, mail_);
  const Data clean = load("digits_val");
  for (int i = 0; i < 5; ++i) loop.infer(clean.x[i].data(), clean.x[i].size(), -1);
  ASSERT_EQ(agent_->record().probation_left, 0u);
  const auto v2 = compile("digits_cnn_v2");
  ASSERT_EQ(update(v2, v1_.artifact, 2, 0), UpdateState::kCommitted);
  EXPECT_EQ(agent_->record().probation_left, 5u);
  // The device restarts (a crash) before the new model ran five inferences.
  make_agent();
  EXPECT_TRUE(agent_->boot());
  EXPECT_EQ(agent_->state(), UpdateState::kRolledBack);
  EXPECT_EQ(agent_->record().installed_release, 1u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(agent_->record().installed_sha256), 32),
            sha256(v1_.artifact));
  EXPECT_EQ(agent_->record().failed_release, 2u);
  EXPECT_NE(mail_.statuses.back().find("probation"), std::string::npos) << mail_.statuses.back();
  // The old model runs, and the same release is not tried again.
  device_agent::InferenceLoop again({}, *agent_, clock_, mail_);
  EXPECT_GE(again.infer(clean.x[0].data(), clean.x[0].size(), -1), 0);
  EXPECT_EQ(update(v2, v1_.artifact, 2, 0), UpdateState::kRolledBack);
}

TEST_F(TelemetryTest, ANewModelOverItsTimeLimitIsRolledBack) {
  ASSERT_TRUE(agent_->provision_empty());
  ASSERT_EQ(update(v1_, "", 1, 0), UpdateState::kCommitted);
  for (int i = 0; i < 5; ++i) agent_->inference_done(true, 1);
  const auto v2 = compile("digits_cnn_v2");
  ASSERT_EQ(update(v2, v1_.artifact, 2, 0), UpdateState::kCommitted);
  agent_->inference_done(true, 1);
  agent_->inference_done(true, config_.inference_timeout_ms + 1);
  EXPECT_EQ(agent_->state(), UpdateState::kRolledBack);
  EXPECT_EQ(agent_->record().installed_release, 1u);
  EXPECT_STREQ(agent_->record().reason, "new model exceeded the inference time limit");
  EXPECT_TRUE(agent_->model_ready());
}

}  // namespace
