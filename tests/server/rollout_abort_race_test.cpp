// An operator's command that lands while the engine is mid-tick wins. A rollout engine
// runs in this process (its test hook fires after a tick has read the rollout and before
// it writes); at the tick that would pass the last phase's gates and complete the
// rollout, the hook calls fleetd's gRPC AbortRollout (or PauseRollout) and lets the tick
// go on. The tick's writes are compare-and-sets on "running", so they lose: the rollout
// ends aborted (or stays paused), never completed. Without the command it completes. A
// leader deposed mid-tick (its lease epoch taken) has its write refused.
#include <gtest/gtest.h>
#include <sodium.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "fleetd_fixture.h"
#include "offline_engine_parts.h"
#include "rollouts/repository.h"
#include "seeded_rollout.h"
#include "tinyfleet/server/offer_builder.h"
#include "tinyfleet/server/rollout_engine.h"
#include "tinyfleet/server/update_publisher.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/update/update_keys.h"
#include "tinyfleet/v1/rollouts.grpc.pb.h"

namespace tinyfleet::testing {
namespace {

// fleetd here serves the API only (no MQTT settings: its own engine does not run).
class AbortMidTick : public FleetdTest {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    FleetdTest::SetUp();
    rollouts_ = v1::Rollouts::NewStub(fleetd_->channel());
    // The publisher is never started: the devices already run the target, so nothing is
    // published.
    ASSERT_NO_FATAL_FAILURE(parts_.set_up(scratch_.db(), "race"));
    engine_ = std::make_unique<server::RolloutEngine>(scratch_.db(), scratch_.uri(),
                                                      parts_.publisher(), parts_.builder(), 0.05);
  }
  void TearDown() override {
    if (engine_) engine_->stop();
  }

  // A running rollout of four devices that already run the target: one phase, no bake,
  // a gate that passes. Left alone, the engine completes it in three ticks.
  int64_t create_rollout() {
    auto id = scratch_.db().transact([](pqxx::work& w) { return seed_rollout(w, "race", 4); });
    EXPECT_TRUE(id) << id.error().message;
    return id ? *id : 0;
  }
  std::string phase_state(int64_t id) {
    auto s = scratch_.db().transact([&](pqxx::work& w) {
      return w.exec_params1("SELECT state FROM rollout_phases WHERE rollout_id = $1", id)[0]
          .as<std::string>();
    });
    return s ? *s : "";
  }
  v1::Rollout wait_final(const std::set<std::string>& states) {
    v1::Rollout r;
    v1::RolloutRef ref;
    ref.set_name("race");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      EXPECT_TRUE(rollouts_->GetRollout(context_with_token(admin_).get(), ref, &r).ok());
      if (states.count(r.state())) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "the rollout is still " << r.state() << " (" << r.reason() << ")";
    return r;
  }
  // Arms the hook: at the first tick that reads the rollout with its phase baking (the
  // tick whose gates pass and which would complete it), `method` is called over gRPC.
  void command_mid_tick(int64_t id,
                        grpc::Status (v1::Rollouts::Stub::*method)(grpc::ClientContext*,
                                                                   const v1::RolloutRef&,
                                                                   v1::Rollout*)) {
    engine_->set_after_read_hook([this, id, method](int64_t rollout) {
      if (rollout != id || fired_ || phase_state(id) != "baking") return;
      fired_ = true;
      v1::RolloutRef ref;
      ref.set_name("race");
      v1::Rollout out;
      command_status_ = (rollouts_.get()->*method)(context_with_token(admin_).get(), ref, &out);
      state_after_command_ = out.state();
    });
  }

  std::unique_ptr<v1::Rollouts::Stub> rollouts_;
  OfflineEngineParts parts_;
  std::unique_ptr<server::RolloutEngine> engine_;
  std::atomic<bool> fired_{false};
  grpc::Status command_status_;
  std::string state_after_command_;
};

TEST_F(AbortMidTick, LeftAloneTheRolloutCompletes) {
  const int64_t id = create_rollout();
  engine_->start();
  const auto r = wait_final({"completed", "aborted", "rolled_back"});
  EXPECT_EQ(r.state(), "completed");
  EXPECT_EQ(r.phases(0).state(), "passed");
  EXPECT_EQ(phase_state(id), "passed");
}

TEST_F(AbortMidTick, AnAbortDuringTheTickIsNotOverwritten) {
  const int64_t id = create_rollout();
  command_mid_tick(id, &v1::Rollouts::Stub::AbortRollout);
  engine_->start();
  const auto r = wait_final({"completed", "aborted", "rolled_back"});
  ASSERT_TRUE(fired_.load());
  EXPECT_TRUE(command_status_.ok()) << command_status_.error_message();
  EXPECT_EQ(state_after_command_, "aborting");
  EXPECT_EQ(r.state(), "aborted");
  EXPECT_EQ(r.reason(), "aborted by bootstrap-admin");
  EXPECT_EQ(r.phases(0).state(), "baking");  // never passed
  EXPECT_EQ(r.rolled_back_devices(), 4u);
}

TEST_F(AbortMidTick, APauseDuringTheTickIsNotOverwritten) {
  const int64_t id = create_rollout();
  command_mid_tick(id, &v1::Rollouts::Stub::PauseRollout);
  engine_->start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!fired_ && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(fired_.load());
  EXPECT_TRUE(command_status_.ok()) << command_status_.error_message();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // ten more ticks
  v1::RolloutRef ref;
  ref.set_name("race");
  v1::Rollout r;
  ASSERT_TRUE(rollouts_->GetRollout(context_with_token(admin_).get(), ref, &r).ok());
  EXPECT_EQ(r.state(), "paused");
  EXPECT_EQ(r.phases(0).state(), "baking");
  // Resumed, it goes on and completes.
  ASSERT_TRUE(rollouts_->ResumeRollout(context_with_token(admin_).get(), ref, &r).ok());
  r = wait_final({"completed", "aborted", "rolled_back"});
  EXPECT_EQ(r.state(), "completed");
}

// A leader deposed in the middle of a tick (another replica took the lease after the tick
// read the rollout): the tick's write is refused (rollouts.fenced, counted), the replica
// stops leading, takes the lock again under a newer epoch and completes the rollout.
TEST_F(AbortMidTick, ALeaderDeposedMidTickHasItsWriteRefused) {
  const int64_t id = create_rollout();
  std::atomic<int64_t> taken{0};
  engine_->set_after_read_hook([&](int64_t rollout) {
    if (rollout != id || fired_ || phase_state(id) != "baking") return;
    fired_ = true;
    auto e =
        scratch_.db().transact([](pqxx::work& w) { return server::rollouts::repo::take_lease(w); });
    if (e) taken = *e;
  });
  engine_->start();
  const auto r = wait_final({"completed", "aborted", "rolled_back"});
  engine_->stop();
  ASSERT_TRUE(fired_.load());
  ASSERT_GT(taken.load(), 0);
  EXPECT_EQ(r.state(), "completed");
  EXPECT_EQ(engine_->writes_fenced(), 1u);
  EXPECT_EQ(engine_->epoch(), taken.load() + 1);  // led again, under the next epoch
}

}  // namespace
}  // namespace tinyfleet::testing
