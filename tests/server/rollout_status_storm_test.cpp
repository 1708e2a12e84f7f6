// A storm of rollbacks: 250 devices report a failed release in one tick, with 10 plain
// reports beside them. The engine applies the plain ones in one statement set and the
// rollbacks one device at a time in commits of at most 100 devices; every report lands.
#include <gtest/gtest.h>
#include <sodium.h>

#include <chrono>
#include <thread>

#include "offline_engine_parts.h"
#include "rollout_seed.h"
#include "seeded_rollout.h"
#include "tinyfleet/server/rollout_engine.h"
#include "tinyfleet/testing/scratch_database.h"
#include "tinyfleet/update/status_message.h"

namespace tinyfleet::testing {
namespace {

std::string encoded(const update::StatusMessage& m) {
  uint8_t buf[update::kMaxStatusBytes];
  size_t n = 0;
  EXPECT_TRUE(update::encode_status(m, buf, sizeof buf, &n).ok());
  return std::string(reinterpret_cast<const char*>(buf), n);
}

TEST(RolloutStatusStorm, EveryRollbackOfAStormIsApplied) {
  ASSERT_GE(sodium_init(), 0);
  ScratchDatabase scratch(4);
  constexpr int kRollbacks = 250, kPlain = 10;
  auto id = scratch.db().transact(
      [](pqxx::work& w) { return seed_rollout(w, "storm", kRollbacks + kPlain); });
  ASSERT_TRUE(id) << id.error().message;
  // Every device offered release 7 (as if the engine had published it).
  auto rows = scratch.db().transact([&](pqxx::work& w) {
    w.exec_params(
        "UPDATE rollout_devices SET state = 'offered', release_seq = 7, offered_at = "
        "now() WHERE rollout_id = $1",
        *id);
    std::vector<std::pair<std::string, std::string>> out;  // device, target artifact
    for (const auto& r :
         w.exec_params("SELECT device_id, target_artifact FROM rollout_devices WHERE "
                       "rollout_id = $1 ORDER BY device_id",
                       *id)) {
      out.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
    }
    return out;
  });
  ASSERT_TRUE(rows) << rows.error().message;
  ASSERT_EQ(rows->size(), static_cast<size_t>(kRollbacks + kPlain));

  OfflineEngineParts parts;
  ASSERT_NO_FATAL_FAILURE(parts.set_up(scratch.db(), "storm"));
  server::RolloutEngine engine(scratch.db(), scratch.uri(), parts.publisher(), parts.builder(),
                               0.05);
  engine.start();
  for (int wait = 0; wait < 200 && !engine.leader(); ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(engine.leader());
  for (size_t i = 0; i < rows->size(); ++i) {
    update::StatusMessage m;
    update::set_text(m.device_class, kSeedClass);
    if (i < static_cast<size_t>(kRollbacks)) {
      m.state = update::UpdateState::kRolledBack;
      m.failed_release = 7;
      update::set_text(m.detail, "self-test failed");
    } else {  // installed the target: a plain report
      m.state = update::UpdateState::kIdle;
      m.has_artifact = true;
      m.release = 7;
      const std::string& hex = (*rows)[i].second;
      for (int b = 0; b < 32; ++b) {
        m.artifact_sha256[b] = static_cast<uint8_t>(std::stoi(hex.substr(2 * b, 2), nullptr, 16));
      }
    }
    ASSERT_TRUE(engine.on_status("default", (*rows)[i].first, encoded(m)));
  }
  const auto count = [&](const std::string& where) {
    auto n = scratch.db().transact([&](pqxx::work& w) {
      return w
          .exec_params1(
              "SELECT count(*)::int FROM rollout_devices WHERE rollout_id = $1 AND " + where,
              *id)[0]
          .as<int>();
    });
    return n ? *n : -1;
  };
  for (int wait = 0; wait < 400 && count("state = 'offered'") != 0; ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(count("state = 'offered'"), 0);
  EXPECT_EQ(count("error LIKE '%self-test failed%'"), kRollbacks);
  EXPECT_EQ(count("updated_at_device IS NOT NULL"), kPlain);
  engine.stop();
}

}  // namespace
}  // namespace tinyfleet::testing
