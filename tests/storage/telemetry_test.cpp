#include <gtest/gtest.h>

#include <chrono>
#include <pqxx/pqxx>
#include <string>
#include <thread>

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
  // Version 2's statistics on the odd rows.
  if (i % 2 == 1) {
    r.version = 2;
    r.seq = (int64_t{1795305600} << 20) + i;
    r.failures = i;
    r.probe_total = 40;
    r.probe_correct = 30 + i;
    r.shadow_total = 10;
    r.shadow_agree = 9;
    r.class_counts = {i, 0, 3'000'000'000'000 + i};
    r.input_count = 100 + i;
    r.input_sum = {0.1 * i, -2.5e-7, 1.0 / 3};
    r.input_sumsq = {0.01 * i * i, 6.25e-14, 1.0 / 9};
    r.latency_hist.assign(24, 0);
    r.latency_hist[10] = 100 + i;
    r.active_us = 123456789 + i;
    if (i == 1) r.energy_measured_uj = 4321.125;
    r.energy_modelled_uj = 33.5 * (100 + i);
  }
  return r;
}

void expect_same_statistics(const TelemetryRow& back, const TelemetryRow& row) {
  EXPECT_EQ(back.version, row.version);
  EXPECT_EQ(back.seq, row.seq);
  EXPECT_EQ(back.failures, row.failures);
  EXPECT_EQ(back.probe_total, row.probe_total);
  EXPECT_EQ(back.probe_correct, row.probe_correct);
  EXPECT_EQ(back.shadow_total, row.shadow_total);
  EXPECT_EQ(back.shadow_agree, row.shadow_agree);
  EXPECT_EQ(back.class_counts, row.class_counts);
  EXPECT_EQ(back.input_count, row.input_count);
  EXPECT_EQ(back.input_sum, row.input_sum);  // exact: every digit goes in
  EXPECT_EQ(back.input_sumsq, row.input_sumsq);
  EXPECT_EQ(back.latency_hist, row.latency_hist);
  EXPECT_EQ(back.active_us, row.active_us);
  EXPECT_EQ(back.energy_measured_uj, row.energy_measured_uj);
  EXPECT_EQ(back.energy_modelled_uj, row.energy_modelled_uj);
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
    expect_same_statistics(back[i], rows[i]);
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
  for (size_t i = 0; i < 3; ++i) expect_same_statistics((*r)[i], rows[i + 1]);
}

TEST(Telemetry, RetentionDropsTheDayPartitionsBeforeADay) {
  ScratchDatabase scratch;
  std::vector<TelemetryRow> rows;
  for (int d = 0; d < 5; ++d) rows.push_back(row("dev-3", kDay1 + d * kDay + 5000, d));
  auto partitions = [](pqxx::work& w) {
    std::vector<std::string> names;
    for (const auto& p : w.exec("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON "
                                "c.oid = i.inhrelid WHERE i.inhparent = 'telemetry'::regclass "
                                "ORDER BY 1")) {
      names.push_back(p[0].as<std::string>());
    }
    return names;
  };
  auto r = scratch.db().transact([&](pqxx::work& w) {
    telemetry::insert_batch(w, rows);
    // Any time on day 3 keeps days 3 and 4, drops days 0 to 2.
    const int dropped = telemetry::drop_partitions_before(w, kDay1 + 3 * kDay + kDay / 2);
    const int again = telemetry::drop_partitions_before(w, kDay1 + 3 * kDay);
    return std::make_tuple(dropped, again, partitions(w),
                           telemetry::for_device(w, "dev-3", 0, 100));
  });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(std::get<0>(*r), 3);
  EXPECT_EQ(std::get<1>(*r), 0);
  EXPECT_EQ(std::get<2>(*r),
            (std::vector<std::string>{"telemetry_20261125", "telemetry_20261126"}));
  ASSERT_EQ(std::get<3>(*r).size(), 2u);
  EXPECT_EQ(std::get<3>(*r)[0].ts_unix_ms, kDay1 + 3 * kDay + 5000);
}

// Two replicas making the same day's partition at once: the one that waited on the other
// finds the table made while it waited and stores its rows (migration 0015; before it,
// "relation telemetry_... already exists" lost the second replica's batch).
TEST(Telemetry, AConcurrentCreatorOfTheSameDayPartitionSucceeds) {
  ScratchDatabase scratch;
  const char* ensure = "SELECT tinyfleet_ensure_telemetry_partition('2031-05-04'::date)";
  pqxx::connection first(scratch.uri()), second(scratch.uri()), watcher(scratch.uri());
  pqxx::work creating(first);
  creating.exec(ensure);  // made, not committed: holds the day's advisory lock
  std::string second_error = "did not run";
  std::thread waiting([&] {
    try {
      pqxx::work w(second);
      w.exec(ensure);
      w.exec(
          "INSERT INTO telemetry (device_id, ts, artifact_sha256, inferences, "
          "latency_p50_us, latency_p95_us, energy_uj, output_psi, input_drift) VALUES "
          "('dev-9', '2031-05-04 12:00:00+00', 'a', 1, 1, 1, 1, 0, 0)");
      w.commit();
      second_error.clear();
    } catch (const std::exception& e) {
      second_error = e.what();
    }
  });
  // Until the second session waits on the lock, then the first commits.
  bool blocked = false;
  for (int i = 0; i < 200 && !blocked; ++i) {
    pqxx::nontransaction n(watcher);
    blocked =
        n.exec1("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")[0]
            .as<int>() > 0;
    if (!blocked) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  creating.commit();
  waiting.join();
  EXPECT_TRUE(blocked) << "the second session never waited on the first";
  EXPECT_EQ(second_error, "");
  pqxx::nontransaction n(watcher);
  EXPECT_EQ(n.exec1("SELECT count(*) FROM telemetry_20310504")[0].as<int>(), 1);
}
