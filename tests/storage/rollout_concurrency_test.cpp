#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/scratch_database.h"

using namespace tinyfleet::storage;
using tinyfleet::testing::ScratchDatabase;

// Two writers on two connections drive the same rollout's devices at once, in
// opposite orders and in multi-device transactions (so they also deadlock and
// retry). Every device must end in exactly one final state and the per-phase
// counters must agree with the rows.
TEST(RolloutConcurrency, TwoWritersLeaveConsistentDeviceStatesAndCounters) {
  constexpr int kDevices = 120;
  constexpr int kBatch = 8;
  ScratchDatabase scratch(/*pool_size=*/2);
  Database& db = scratch.db();
  auto setup = db.transact([&](pqxx::work& w) {
    device_classes::upsert(w, {"cortex-m4-256k", "{}"});
    models::create(w, "kws", "");
    auto v = models::create_version(w, {"kws", 0, PgBlobStore::put(w, "m"), {}, {}, {}});
    auto r = rollouts::create(w, {"r", v.id, "{}", "{}", "rollback", 600, {{50, 0}, {100, 0}}});
    for (int i = 0; i < kDevices; ++i) {
      std::string id = "dev-" + std::to_string(1000 + i);
      devices::create(w, {id, "f", "cortex-m4-256k", {}, "h"});
      rollouts::admit_device(w, r.id, id, i % 2);
    }
    return r.id;
  });
  ASSERT_TRUE(setup) << setup.error().message;
  const int64_t rollout = *setup;

  std::atomic<int> wins{0};
  std::atomic<int> errors{0};
  auto writer = [&](bool ascending, const char* final_state) {
    for (int start = 0; start < kDevices; start += kBatch) {
      auto r = db.transact([&](pqxx::work& w) {
        int won = 0;
        for (int k = 0; k < kBatch && start + k < kDevices; ++k) {
          int i = ascending ? start + k : kDevices - 1 - (start + k);
          std::string id = "dev-" + std::to_string(1000 + i);
          if (rollouts::transition_device(w, rollout, id, "admitted", "offered")) {
            won += rollouts::transition_device(w, rollout, id, "offered", final_state) ? 1 : 0;
          }
        }
        return won;
      });
      if (r) {
        wins += *r;
      } else {
        ADD_FAILURE() << r.error().message;
        ++errors;
      }
    }
  };
  std::thread a(writer, true, "updated");
  std::thread b(writer, false, "failed");
  a.join();
  b.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(wins.load(), kDevices);

  auto check = db.transact([&](pqxx::work& w) {
    auto rec = rollouts::get(w, rollout);
    auto rows = rollouts::devices(w, rollout);
    int updated_rows = 0, failed_rows = 0, other_rows = 0;
    for (const auto& d : rows) {
      if (d.state == "updated")
        ++updated_rows;
      else if (d.state == "failed")
        ++failed_rows;
      else
        ++other_rows;
    }
    int updated_counters = 0, failed_counters = 0, admitted = 0;
    for (const auto& p : rec.phases) {
      updated_counters += p.updated;
      failed_counters += p.failed;
      admitted += p.admitted;
    }
    EXPECT_EQ(other_rows, 0);
    EXPECT_EQ(updated_rows + failed_rows, kDevices);
    EXPECT_EQ(updated_counters, updated_rows);
    EXPECT_EQ(failed_counters, failed_rows);
    EXPECT_EQ(admitted, kDevices);
    return Done{};
  });
  ASSERT_TRUE(check) << check.error().message;
}
