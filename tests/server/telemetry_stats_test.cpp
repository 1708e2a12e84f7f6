// Per-device telemetry statistics on a real PostgreSQL (rollouts/telemetry_stats.h): one
// DeviceStats per device, the sums of its windows on one artifact since a time, whatever
// how many windows each device sent; windows of other artifacts, other devices or from
// before are left out.
#include <gtest/gtest.h>
#include <sodium.h>

#include <chrono>
#include <map>

#include "rollout_seed.h"
#include "rollouts/repository.h"
#include "rollouts/selection.h"
#include "rollouts/telemetry_stats.h"
#include "tinyfleet/storage/telemetry.h"
#include "tinyfleet/testing/scratch_database.h"

namespace tinyfleet::testing {
namespace {

namespace stats = server::rollouts::telemetry_stats;
using server::rollouts::DeviceStats;
using storage::TelemetryRow;

const std::string kArtifact(64, 'a');
const std::string kOther(64, 'b');

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Window `k` of a device: counts that differ by window, so a wrong sum shows.
TelemetryRow window(const std::string& device, const std::string& artifact, int64_t ts, int k) {
  TelemetryRow r;
  r.device_id = device;
  r.ts_unix_ms = ts;
  r.artifact_sha256 = artifact;
  r.version = 2;
  r.seq = k + 1;
  r.inferences = 100 + k;
  r.failures = k;
  r.probe_total = 10;
  r.probe_correct = 7 + k % 3;
  r.shadow_total = 4;
  r.shadow_agree = 3;
  r.class_counts = {50, 30 + k, 20};
  r.input_count = 100 + k;
  r.input_sum = {1.5 * (k + 1), -0.25};
  r.input_sumsq = {2.0 * (k + 1), 0.125};
  r.latency_hist.assign(24, 0);
  r.latency_hist[10] = 100 + k;
  r.active_us = 1'000'000 + k;
  r.energy_measured_uj = 10.0 * (k + 1);
  r.energy_modelled_uj = 2.5 * (100 + k);
  return r;
}

class TelemetryStats : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_GE(sodium_init(), 0); }
  ScratchDatabase scratch_;
};

TEST_F(TelemetryStats, OneSumPerDeviceOverItsWindows) {
  const int64_t now = now_ms(), hour = 3600 * 1000;
  std::vector<TelemetryRow> rows;
  for (int k = 0; k < 50; ++k) rows.push_back(window("flood", kArtifact, now - k * 1000, k));
  for (int k = 0; k < 2; ++k) rows.push_back(window("quiet", kArtifact, now - k * 1000, k));
  rows.push_back(window("quiet", kOther, now, 9));                // another artifact
  rows.push_back(window("quiet", kArtifact, now - 3 * hour, 9));  // before `since`
  rows.push_back(window("outsider", kArtifact, now, 0));          // not asked for
  // A version-1 window: probe counts only.
  TelemetryRow old;
  old.device_id = "old";
  old.ts_unix_ms = now;
  old.artifact_sha256 = kArtifact;
  old.inferences = 20;
  old.probe_total = 5;
  old.probe_correct = 4;
  rows.push_back(old);
  auto got = scratch_.db().transact([&](pqxx::work& w) {
    storage::telemetry::insert_batch(w, rows);
    return stats::for_devices(w, {"flood", "quiet", "old", "silent"}, kArtifact, now - hour);
  });
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->size(), 3u);  // "silent" sent nothing
  const DeviceStats& flood = (*got)[0];
  const DeviceStats& old_stats = (*got)[1];
  const DeviceStats& quiet = (*got)[2];
  EXPECT_EQ(flood.device_id, "flood");
  EXPECT_EQ(old_stats.device_id, "old");
  EXPECT_EQ(quiet.device_id, "quiet");

  // Sums over k = 0..49.
  EXPECT_EQ(flood.windows, 50u);
  EXPECT_EQ(flood.inferences, 50u * 100 + 1225);
  EXPECT_EQ(flood.failures, 1225u);
  EXPECT_EQ(flood.probe_total, 500u);
  uint64_t correct = 0;
  for (int k = 0; k < 50; ++k) correct += 7 + k % 3;
  EXPECT_EQ(flood.probe_correct, correct);
  EXPECT_EQ(flood.shadow_total, 200u);
  EXPECT_EQ(flood.shadow_agree, 150u);
  EXPECT_EQ(flood.class_counts, (std::vector<uint64_t>{2500, 1500 + 1225, 1000}));
  EXPECT_EQ(flood.input_count, 50u * 100 + 1225);
  ASSERT_EQ(flood.input_sum.size(), 2u);
  EXPECT_DOUBLE_EQ(flood.input_sum[0], 1.5 * 1275);
  EXPECT_DOUBLE_EQ(flood.input_sum[1], -0.25 * 50);
  EXPECT_DOUBLE_EQ(flood.input_sumsq[0], 2.0 * 1275);
  EXPECT_DOUBLE_EQ(flood.input_sumsq[1], 0.125 * 50);
  ASSERT_EQ(flood.latency_hist.size(), 24u);
  EXPECT_EQ(flood.latency_hist[10], 50u * 100 + 1225);
  EXPECT_EQ(flood.latency_hist[9], 0u);
  EXPECT_NEAR(flood.active_seconds, 50 + 1225e-6, 1e-9);
  ASSERT_TRUE(flood.energy_measured_uj);
  EXPECT_DOUBLE_EQ(*flood.energy_measured_uj, 10.0 * 1275);
  EXPECT_DOUBLE_EQ(flood.energy_modelled_uj, 2.5 * (5000 + 1225));

  // Two windows, whatever the other device sent.
  EXPECT_EQ(quiet.windows, 2u);
  EXPECT_EQ(quiet.inferences, 201u);
  EXPECT_EQ(quiet.class_counts, (std::vector<uint64_t>{100, 61, 40}));

  // Version 1: counts, no statistics, no measured energy.
  EXPECT_EQ(old_stats.windows, 1u);
  EXPECT_EQ(old_stats.probe_correct, 4u);
  EXPECT_EQ(old_stats.probe_total, 5u);
  EXPECT_TRUE(old_stats.class_counts.empty());
  EXPECT_TRUE(old_stats.latency_hist.empty());
  EXPECT_FALSE(old_stats.energy_measured_uj);
}

TEST_F(TelemetryStats, MeasuredEnergyOnlyWhenEveryWindowHasIt) {
  const int64_t now = now_ms();
  auto a = window("d", kArtifact, now, 0);
  auto b = window("d", kArtifact, now - 1000, 1);
  b.energy_measured_uj.reset();
  auto got = scratch_.db().transact([&](pqxx::work& w) {
    storage::telemetry::insert_batch(w, {a, b});
    return stats::for_devices(w, {"d"}, kArtifact, now - 60000);
  });
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->size(), 1u);
  EXPECT_FALSE((*got)[0].energy_measured_uj);
  EXPECT_DOUBLE_EQ((*got)[0].energy_modelled_uj, 2.5 * 201);
}

TEST_F(TelemetryStats, ARolloutsDevices) {
  const int64_t now = now_ms();
  auto got = scratch_.db().transact([&](pqxx::work& w) {
    const auto fleet = seed_fleet(w, 4, false);
    std::vector<server::rollouts::Candidate> selected;
    for (const auto& d : fleet.devices) selected.push_back({d, kSeedClass, {}});
    server::rollouts::repo::NewRollout r;
    r.name = "r";
    r.fleet = "default";
    r.selector_json = "{}";
    r.on_failure = "rollback";
    r.version_id = fleet.version_id;
    r.rate_per_minute = 600;
    r.phases = {{100, 0}};
    const auto id = server::rollouts::repo::insert(
        w, r, server::rollouts::place("r", selected, {100}), {{kSeedClass, fleet.artifact}});
    std::vector<TelemetryRow> rows;
    for (size_t i = 0; i < 3; ++i) {
      for (int k = 0; k <= static_cast<int>(i); ++k) {
        rows.push_back(window(fleet.devices[i], fleet.artifact, now - k * 1000, k));
      }
    }
    rows.push_back(window("not-in-the-rollout", fleet.artifact, now, 0));
    storage::telemetry::insert_batch(w, rows);
    return std::make_pair(fleet.devices, stats::for_rollout(w, id, fleet.artifact, now - 60000));
  });
  ASSERT_TRUE(got) << got.error().message;
  const auto& [devices, s] = *got;
  ASSERT_EQ(s.size(), 3u);  // the fourth device sent nothing
  std::map<std::string, uint32_t> windows;
  for (const auto& d : s) windows[d.device_id] = d.windows;
  EXPECT_EQ(windows[devices[0]], 1u);
  EXPECT_EQ(windows[devices[1]], 2u);
  EXPECT_EQ(windows[devices[2]], 3u);
}

// reporting() finds the devices for_spans finds, with the same window counts, in one
// query: what a min_reporting gate reads when no clause is statistical.
TEST_F(TelemetryStats, ReportingCountsWhatForSpansCounts) {
  const int64_t now = now_ms();
  auto got = scratch_.db().transact([&](pqxx::work& w) {
    std::vector<TelemetryRow> rows;
    for (int i = 0; i < 3; ++i) {
      for (int k = 0; k <= i; ++k)
        rows.push_back(window("d" + std::to_string(i), kArtifact, now - k * 1000, k));
    }
    rows.push_back(window("d0", kOther, now, 5));             // another artifact
    rows.push_back(window("d1", kArtifact, now - 90000, 6));  // before its span
    storage::telemetry::insert_batch(w, rows);
    std::vector<stats::Span> spans;
    for (const char* d : {"d0", "d1", "d2", "d3"}) spans.push_back({d, kArtifact, now - 60000, {}});
    return std::make_pair(stats::reporting(w, spans), stats::for_spans(w, spans));
  });
  ASSERT_TRUE(got) << got.error().message;
  const auto& [light, full] = *got;
  ASSERT_EQ(light.size(), 3u);  // d3 sent nothing
  ASSERT_EQ(full.size(), light.size());
  for (size_t i = 0; i < light.size(); ++i) {
    EXPECT_EQ(light[i].device_id, full[i].device_id);
    EXPECT_EQ(light[i].windows, full[i].windows);
    EXPECT_EQ(light[i].windows, i + 1) << light[i].device_id;
    EXPECT_TRUE(light[i].class_counts.empty());  // nothing else read
  }
}

}  // namespace
}  // namespace tinyfleet::testing
