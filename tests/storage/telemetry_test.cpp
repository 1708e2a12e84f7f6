#include <gtest/gtest.h>

#include "tinyfleet/storage/telemetry.h"
#include "tinyfleet/testing/scratch_database.h"

using namespace tinyfleet::storage;
using tinyfleet::testing::ScratchDatabase;

namespace {
TelemetryRow row(const std::string& device, int64_t ts, int i) {
  TelemetryRow r;
  r.device_id = device;
  r.ts_unix_ms = ts;
  r.artifact_sha256 = std::string(64, 'a');
  r.inferences = 100 + i;
  r.latency_p50_us = 1200.5 + i;
  r.latency_p95_us = 1800.25;
  r.energy_uj = 33.5;
  r.output_psi = 0.01 * i;
  r.input_drift = 0.5;
  if (i % 2 == 0) {
    r.rollout_id = 42;
    r.probe_accuracy = 0.97;
  }
  if (i % 3 == 0) r.shadow_agreement = 0.99;
  return r;
}
constexpr int64_t kDay1 = 1795305600000;  // 2026-11-22T00:00:00Z
constexpr int64_t kDay = 86400000;
}  // namespace

TEST(Telemetry, BatchedCopyMakesDayPartitionsAndRoundTripsNulls) {
  ScratchDatabase scratch;
  std::vector<TelemetryRow> rows;
  for (int i = 0; i < 6; ++i) rows.push_back(row("dev-1", kDay1 + i * (kDay / 4) + 123, i));
  auto r = scratch.db().transact([&](pqxx::work& w) {
    telemetry::insert_batch(w, rows);
    auto parts = w.exec(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'telemetry'::regclass ORDER BY 1");
    std::vector<std::string> names;
    for (const auto& p : parts) names.push_back(p[0].as<std::string>());
    return std::make_pair(names, telemetry::for_device(w, "dev-1", 0, 100));
  });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->first, (std::vector<std::string>{"telemetry_20261122", "telemetry_20261123"}));
  const auto& back = r->second;
  ASSERT_EQ(back.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(back[i].ts_unix_ms, rows[i].ts_unix_ms);
    EXPECT_EQ(back[i].inferences, rows[i].inferences);
    EXPECT_DOUBLE_EQ(back[i].latency_p50_us, rows[i].latency_p50_us);
    EXPECT_EQ(back[i].rollout_id, rows[i].rollout_id);
    EXPECT_EQ(back[i].probe_accuracy, rows[i].probe_accuracy);
    EXPECT_EQ(back[i].shadow_agreement, rows[i].shadow_agreement);
  }
}

TEST(Telemetry, RowByRowInsertStoresTheSameRows) {
  ScratchDatabase scratch;
  std::vector<TelemetryRow> rows;
  for (int i = 0; i < 4; ++i) rows.push_back(row("dev-2", kDay1 + i * 1000, i));
  auto r = scratch.db().transact([&](pqxx::work& w) {
    telemetry::insert_rows(w, rows);
    return telemetry::for_device(w, "dev-2", kDay1 + 1000, 100);
  });
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 3u);  // since = second row
  EXPECT_EQ((*r)[0].ts_unix_ms, kDay1 + 1000);
  EXPECT_EQ((*r)[1].shadow_agreement, std::nullopt);  // i = 2
  EXPECT_EQ((*r)[2].shadow_agreement, 0.99);          // i = 3
}
