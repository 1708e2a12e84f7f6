// The rollout engine decides a phase's gates with the gate statistics, on telemetry that
// went through fleetd's ingestion (TelemetryIngest::on_message, as the listener calls it)
// into the stack's PostgreSQL: a rollout engine and an ingest run in this process over a
// scratch database. 40 devices run v1; phase 0 (20 devices) already runs v2, so the engine
// updates it in place and no device process is needed; phase 1 (20 devices, still on v1)
// is the concurrent control group.
// - One compromised canary flooding perfect probe accuracy at 100 windows a second (the
//   ingest's rate limit opened wide, so every window is stored) cannot pass a model 30
//   points worse than the control group.
// - A clean rollout passes; a drifted input fails input_drift; energy_regression fails on a
//   measured regression and ignores modelled energy.
#include <gtest/gtest.h>
#include <sodium.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "offline_engine_parts.h"
#include "rollout_seed.h"
#include "rollouts/repository.h"
#include "tinyfleet/server/offer_builder.h"
#include "tinyfleet/server/rollout_engine.h"
#include "tinyfleet/server/telemetry_ingest.h"
#include "tinyfleet/server/update_publisher.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/scratch_database.h"
#include "tinyfleet/update/telemetry_message.h"
#include "tinyfleet/update/update_keys.h"

namespace tinyfleet::testing {
namespace {

namespace repo = server::rollouts::repo;

constexpr int kDevices = 40;

// What one device's windows say.
struct Behaviour {
  double accuracy = 0.9;    // share of probes right
  double input_mean = 0.0;  // of both channels (standard deviation 1)
  double energy_uj = 0;     // measured per inference; 0: no meter
  double modelled_uj = 10;  // modelled per inference
};

class GatesInTheEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    // The publisher is never started: phase 0 runs the target already; phase 1 is never
    // admitted.
    ASSERT_NO_FATAL_FAILURE(parts_.set_up(scratch_.db(), "gates"));
    ingest_ = std::make_unique<server::TelemetryIngest>(scratch_.db());
    server::TelemetryIngest::Limits open;
    open.windows_per_minute = 1e6;  // every flooded window is stored
    open.burst = 1e6;
    ingest_->set_limits(open);
    ingest_->start();
  }
  void TearDown() override {
    if (engine_) engine_->stop();
    if (ingest_) ingest_->stop();
  }

  // v1 on every device, v2 on phase 0's; a rollout of v2 in two phases of 20 devices
  // with `gates`, a bake of 2 s, and the engine started with looks every 2 s.
  void start(const std::string& gates) {
    auto ids = scratch_.db().transact([&](pqxx::work& w) {
      const auto fleet = seed_fleet(w, kDevices, true);
      old_ = fleet.artifact;
      const auto v2 = storage::models::create_version(
          w, {"digits", 0, storage::PgBlobStore::put(w, "onnx v2"), {}, {}, {}});
      new_ = storage::PgBlobStore::put(w, "artifact of digits v2");
      storage::NewArtifact a;
      a.version_id = v2.id;
      a.device_class = kSeedClass;
      a.artifact_sha256 = new_;
      storage::artifacts::store(w, a);
      std::vector<server::rollouts::Candidate> selected;
      for (const auto& d : fleet.devices) selected.push_back({d, kSeedClass, {}});
      repo::NewRollout r;
      r.name = "v2";
      r.fleet = "default";
      r.selector_json = "{}";
      r.gates_text = gates;
      r.on_failure = "rollback";
      r.version_id = v2.id;
      r.rate_per_minute = 6000;
      r.phases = {{50, 2}, {100, 0}};
      const int64_t id = repo::insert(w, r, server::rollouts::place("v2", selected, {50, 100}),
                                      {{kSeedClass, new_}});
      w.exec_params(
          "UPDATE devices d SET current_artifact_sha256 = $2 FROM rollout_devices rd WHERE "
          "rd.device_id = d.id AND rd.rollout_id = $1 AND rd.phase = 0",
          id, new_);
      return id;
    });
    ASSERT_TRUE(ids) << ids.error().message;
    id_ = *ids;
    for (int phase = 0; phase < 2; ++phase) {
      auto rows = scratch_.db().transact([&](pqxx::work& w) {
        std::vector<std::string> out;
        for (const auto& row : w.exec_params(
                 "SELECT device_id FROM rollout_devices WHERE rollout_id = $1 AND phase = $2 "
                 "ORDER BY rank",
                 id_, phase)) {
          out.push_back(row[0].as<std::string>());
        }
        return out;
      });
      ASSERT_TRUE(rows);
      (phase == 0 ? canary_ : control_) = *rows;
    }
    ASSERT_EQ(canary_.size(), 20u);
    ASSERT_EQ(control_.size(), 20u);
    server::GatePolicy policy;  // alpha 0.01, at least 5 devices a group
    policy.max_looks = 6;
    policy.max_wait_seconds = 10;
    engine_ = std::make_unique<server::RolloutEngine>(
        scratch_.db(), scratch_.uri(), parts_.publisher(), parts_.builder(), 0.05, policy);
    engine_->start();
    wait_until([&] { return phase_state(0) == "baking"; }, "phase 0 bakes");
  }

  // One window of `device` on `artifact`, as a device would publish it.
  void send(const std::string& device, const std::string& artifact, const Behaviour& b) {
    update::TelemetryMessage m;
    m.seq = ++seq_[device];
    m.ts_unix = static_cast<uint64_t>(time(nullptr));
    m.release = 1;
    sodium_hex2bin(m.artifact_sha256, sizeof m.artifact_sha256, artifact.data(), artifact.size(),
                   nullptr, nullptr, nullptr);
    m.inferences = 50;
    m.probes = 50;
    m.probes_correct = static_cast<uint32_t>(b.accuracy * 50 + (m.seq % 3 == 0 ? 1 : 0));
    if (m.probes_correct > 50) m.probes_correct = 50;
    m.classes = 4;
    for (int c = 0; c < 4; ++c) m.class_counts[c] = 12 + (c < 2 ? 1 : 0);
    m.channels = 2;
    m.input_count = 50;
    for (int c = 0; c < 2; ++c) {
      // 50 inputs with mean `input_mean` + a little per window, standard deviation 1.
      const double mean = b.input_mean + 0.05 * static_cast<double>(m.seq % 5) - 0.1;
      m.input_sum[c] = 50 * mean;
      m.input_sumsq[c] = 50 * (1 + mean * mean);
    }
    m.latency_hist[7] = 50;
    m.active_us = 5000;
    m.energy_modelled_uj = 50 * b.modelled_uj;
    if (b.energy_uj > 0) {
      m.flags = update::kTelemetryEnergyMeasured;
      m.energy_measured_uj = 50 * b.energy_uj * (1 + 0.01 * static_cast<double>(m.seq % 4));
    }
    uint8_t out[update::kTelemetryMaxBytes];
    size_t n = 0;
    ASSERT_TRUE(update::encode_telemetry(m, out, sizeof out, &n).ok());
    ingest_->on_message("default", device, std::string(reinterpret_cast<char*>(out), n));
  }

  // Every device reports `windows` windows: the canaries on v2 as `canary`, the control
  // devices on v1 as `control`; one every 10 ms per round.
  void report(int windows, const Behaviour& canary, const Behaviour& control) {
    for (int i = 0; i < windows; ++i) {
      for (const auto& d : canary_) send(d, new_, canary);
      for (const auto& d : control_) send(d, old_, control);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  std::string phase_state(int phase) {
    auto s = scratch_.db().transact([&](pqxx::work& w) {
      return w
          .exec_params1("SELECT state FROM rollout_phases WHERE rollout_id = $1 AND idx = $2", id_,
                        phase)[0]
          .as<std::string>();
    });
    return s ? *s : "";
  }
  std::pair<std::string, std::string> state_and_reason() {
    auto s = scratch_.db().transact([&](pqxx::work& w) {
      const auto r = w.exec_params1("SELECT state, reason FROM rollouts WHERE id = $1", id_);
      return std::pair{r[0].as<std::string>(), r[1].as<std::string>()};
    });
    return s ? *s : std::pair<std::string, std::string>{};
  }
  // The last decision the engine recorded for phase 0.
  nlohmann::json last_decision() {
    auto s = scratch_.db().transact([&](pqxx::work& w) {
      const auto r = w.exec_params(
          "SELECT report::text FROM rollout_gate_history WHERE rollout_id = $1 AND phase = 0 "
          "AND stage = 'decision' ORDER BY at DESC LIMIT 1",
          id_);
      return r.empty() ? std::string("[]") : r[0][0].as<std::string>();
    });
    return nlohmann::json::parse(s ? *s : "[]");
  }
  void wait_until(const std::function<bool()>& done, const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const auto [state, reason] = state_and_reason();
    FAIL() << "never: " << what << "; the rollout is " << state << " (" << reason << ")";
  }
  // Waits for phase 0's gates to decide: "passed" or "failed".
  std::string decided() {
    std::string s;
    wait_until(
        [&] {
          s = phase_state(0);
          return s == "passed" || s == "failed";
        },
        "phase 0 decided");
    return s;
  }

  ScratchDatabase scratch_{/*pool_size=*/4};
  OfflineEngineParts parts_;
  std::unique_ptr<server::TelemetryIngest> ingest_;
  std::unique_ptr<server::RolloutEngine> engine_;
  std::map<std::string, uint64_t> seq_;
  std::string old_, new_;
  int64_t id_ = 0;
  std::vector<std::string> canary_, control_;
};

TEST_F(GatesInTheEngine, OneFloodingCanaryCannotPassAModelThirtyPointsWorse) {
  start("failure_rate <= 0.05 && accuracy_drop <= 0.10");
  // The compromised canary: perfect probes, 100 windows a second for 2 s, while the
  // 19 honest canaries (30 points worse than control) and the control report 4 each.
  const std::string liar = canary_.front();
  std::thread flood([&] {
    for (int i = 0; i < 200; ++i) {
      send(liar, new_, {1.0});
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  report(4, {0.6}, {0.9});
  flood.join();
  EXPECT_EQ(decided(), "failed");
  const auto [state, reason] = state_and_reason();
  EXPECT_TRUE(state == "rolling_back" || state == "rolled_back") << state;
  EXPECT_EQ(reason.rfind("gate 'accuracy_drop <= 0.1' failed in phase 0: 0.", 0), 0u) << reason;
  const auto report = last_decision();
  ASSERT_EQ(report.size(), 2u) << report.dump();
  const auto& drop = report[1];
  EXPECT_EQ(drop["verdict"], "fail") << drop.dump();
  EXPECT_FALSE(drop["timed_out"].get<bool>());
  EXPECT_GT(drop["lo"].get<double>(), 0.1);
  EXPECT_GT(drop["value"].get<double>(), 0.2);  // the flood moves it by its share, at most
  EXPECT_EQ(drop["canary"]["devices"], 20);
  EXPECT_LT(drop["canary"]["value"].get<double>(), 0.7);
  EXPECT_EQ(drop["reference"]["group"], "control");
  EXPECT_EQ(drop["reference"]["devices"], 20);
  EXPECT_EQ(ingest_->rate_limited(), 0u);  // the flood was stored, not dropped
}

TEST_F(GatesInTheEngine, ACleanRolloutPasses) {
  start("failure_rate <= 0.05 && accuracy_drop <= 0.10 && psi < 0.1 && input_drift < 0.5");
  report(4, {0.9}, {0.9});
  EXPECT_EQ(decided(), "passed");
  const auto report = last_decision();
  ASSERT_EQ(report.size(), 4u) << report.dump();
  for (const auto& clause : report) {
    EXPECT_EQ(clause["verdict"], "pass") << clause.dump();
  }
  EXPECT_LT(report[2]["value"].get<double>(), 0.01);  // output drift near 0
}

TEST_F(GatesInTheEngine, ADriftedInputFailsInputDrift) {
  start("input_drift < 0.5");
  Behaviour drifted;
  drifted.input_mean = 2.0;  // two standard deviations off
  report(4, drifted, {});
  EXPECT_EQ(decided(), "failed");
  EXPECT_EQ(state_and_reason().second.rfind("gate 'input_drift < 0.5' failed in phase 0", 0), 0u)
      << state_and_reason().second;
}

TEST_F(GatesInTheEngine, EnergyRegressionIsMeasuredNotModelled) {
  start("energy_regression <= 0.1");
  Behaviour canary, control;
  canary.energy_uj = 15, control.energy_uj = 10;  // 50% more measured energy
  report(4, canary, control);
  EXPECT_EQ(decided(), "failed");
  const auto report = last_decision();
  ASSERT_EQ(report.size(), 1u);
  EXPECT_NEAR(report[0]["value"].get<double>(), 0.5, 0.05);
  EXPECT_NEAR(report[0]["canary"]["value"].get<double>(), 15, 0.5);
  EXPECT_NEAR(report[0]["reference"]["value"].get<double>(), 10, 0.5);
}

TEST_F(GatesInTheEngine, ModelledEnergyDoesNotCount) {
  start("energy_regression <= 0.1");
  Behaviour canary, control;
  canary.energy_uj = control.energy_uj = 10;  // measured: the same
  canary.modelled_uj = 40;                    // modelled: four times as much
  report(4, canary, control);
  EXPECT_EQ(decided(), "passed");
}

}  // namespace
}  // namespace tinyfleet::testing
