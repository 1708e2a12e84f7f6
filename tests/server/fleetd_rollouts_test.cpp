// The operator commands on rollouts through fleetd's gRPC API (real fleetd, PostgreSQL
// and Mosquitto): Pause, Resume, Promote and Abort, each from the states the transition
// table allows and refused (FAILED_PRECONDITION, naming the state) from the others.
// Promote finishes the current phase now, only while running and only when every gate
// passes on the telemetry so far. The devices already run the version's artifact, so
// fleetd's engine updates them in place and no device process is needed.
// SkipGates promotes without the gates, for an admin with a reason, audited; concurrent
// CreateRollouts over the same devices enrol each device once; ListRollouts is paged.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "fleetd_fixture.h"
#include "rollout_seed.h"
#include "rollouts/repository.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/update/update_keys.h"
#include "tinyfleet/v1/rollouts.grpc.pb.h"

namespace tinyfleet::testing {
namespace {

namespace fs = std::filesystem;

class RolloutCommands : public FleetdUpdatesTest {
 protected:
  // Two devices a phase: gates decide on the point value (alpha 0.5 over one look puts
  // the interval at the estimate) once two devices report.
  std::map<std::string, std::string> fleetd_settings() override {
    auto s = update_settings();
    s["gates.min_devices"] = "2";
    s["gates.alpha"] = "0.5";
    s["gates.max_looks"] = "1";
    return s;
  }
  void SetUp() override {
    FleetdTest::SetUp();
    rollouts_ = v1::Rollouts::NewStub(fleetd_->channel());
    auto f = scratch_.db().transact([](pqxx::work& w) { return seed_fleet(w, 4, true); });
    ASSERT_TRUE(f) << f.error().message;
    fleet_ = *f;
  }

  grpc::Status create(const std::string& name, std::vector<std::pair<int, int>> phases,
                      const std::string& gates, v1::Rollout* out) {
    v1::CreateRolloutRequest req;
    req.set_name(name);
    req.set_model("digits");
    req.set_version(1);
    req.mutable_selector()->add_tags("t");
    for (const auto& [percent, bake] : phases) {
      auto* p = req.add_phases();
      p->set_percent(percent);
      p->set_bake_seconds(bake);
    }
    req.set_gates(gates);
    return rollouts_->CreateRollout(context_with_token(admin_).get(), req, out);
  }
  using Call = grpc::Status (v1::Rollouts::Stub::*)(grpc::ClientContext*, const v1::RolloutRef&,
                                                    v1::Rollout*);
  grpc::Status call(Call method, const std::string& name, v1::Rollout* out,
                    const std::string& token = "") {
    v1::RolloutRef ref;
    ref.set_name(name);
    return (rollouts_.get()->*method)(context_with_token(token.empty() ? admin_ : token).get(), ref,
                                      out);
  }
  // Polls the rollout until `done` holds (or 30 s pass).
  v1::Rollout wait_for(const std::string& name, const std::function<bool(const v1::Rollout&)>& done,
                       const char* what) {
    v1::Rollout r;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      EXPECT_TRUE(call(&v1::Rollouts::Stub::GetRollout, name, &r).ok());
      if (done(r)) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "rollout '" << name << "' never " << what << "; it is " << r.state() << " ("
                  << r.reason() << ")\n"
                  << fleetd_->log().substr(0, 8000);
    return r;
  }
  static bool phase_baking(const v1::Rollout& r, int phase) {
    return r.current_phase() == static_cast<uint32_t>(phase) && r.phases_size() > phase &&
           r.phases(phase).state() == "baking";
  }
  void expect_refused(const grpc::Status& s, const std::string& text) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
    EXPECT_NE(s.error_message().find(text), std::string::npos) << s.error_message();
  }
  void telemetry(const std::vector<std::string>& devices, double accuracy) {
    ASSERT_TRUE(scratch_.db().transact([&](pqxx::work& w) {
      w.exec("DELETE FROM telemetry");
      for (const auto& d : devices) add_telemetry(w, d, fleet_.artifact, accuracy);
      return 0;
    }));
  }
  std::vector<std::string> devices_of_phase(const std::string& rollout, int phase) {
    std::vector<std::string> out;
    auto rows = scratch_.db().transact([&](pqxx::work& w) {
      return w.exec_params(
          "SELECT rd.device_id FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id "
          "WHERE r.name = $1 AND rd.phase = $2",
          rollout, phase);
    });
    for (const auto& row : *rows) out.push_back(row[0].as<std::string>());
    return out;
  }

  SeededFleet fleet_;
  std::unique_ptr<v1::Rollouts::Stub> rollouts_;
};

using Stub = v1::Rollouts::Stub;

TEST_F(RolloutCommands, PauseResumeAndPromoteFromTheStatesTheyNeed) {
  v1::Rollout r;
  ASSERT_TRUE(
      create("r1", {{50, 3600}, {100, 3600}}, "failure_rate <= 0.05 && accuracy >= 0.8", &r).ok());
  EXPECT_EQ(r.state(), "running");
  r = wait_for(
      "r1", [](const v1::Rollout& x) { return phase_baking(x, 0); }, "baked phase 0");

  // Promote while no device reported the accuracy: refused, naming the gate.
  expect_refused(call(&Stub::PromoteRollout, "r1", &r),
                 "phase 0 cannot be promoted: gate 'accuracy >= 0.8' has no data yet");
  expect_refused(call(&Stub::ResumeRollout, "r1", &r), "is running; resume needs it paused");

  ASSERT_TRUE(call(&Stub::PauseRollout, "r1", &r).ok());
  EXPECT_EQ(r.state(), "paused");
  EXPECT_EQ(r.reason(), "paused by bootstrap-admin");
  expect_refused(call(&Stub::PauseRollout, "r1", &r), "is paused; pause needs it running");
  telemetry(devices_of_phase("r1", 0), 0.95);
  expect_refused(call(&Stub::PromoteRollout, "r1", &r), "is paused; promote needs it running");
  // Paused, the engine leaves it alone.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(call(&Stub::GetRollout, "r1", &r).ok());
  EXPECT_EQ(r.state(), "paused");
  EXPECT_EQ(r.current_phase(), 0u);

  ASSERT_TRUE(call(&Stub::ResumeRollout, "r1", &r).ok());
  EXPECT_EQ(r.state(), "running");
  EXPECT_EQ(r.reason(), "resumed by bootstrap-admin");

  // A gate that fails on the data so far refuses the promotion with its value.
  telemetry(devices_of_phase("r1", 0), 0.6);
  expect_refused(call(&Stub::PromoteRollout, "r1", &r),
                 "gate 'accuracy >= 0.8' does not pass: 0.6");
  ASSERT_TRUE(call(&Stub::GetRollout, "r1", &r).ok());
  EXPECT_EQ(r.current_phase(), 0u);

  // Passing gates: phase 0 ends now, with an hour of bake left.
  telemetry(devices_of_phase("r1", 0), 0.95);
  ASSERT_TRUE(call(&Stub::PromoteRollout, "r1", &r).ok());
  EXPECT_EQ(r.state(), "running");
  EXPECT_EQ(r.current_phase(), 1u);
  EXPECT_EQ(r.phases(0).state(), "passed");
  EXPECT_EQ(r.reason(), "phase 0 promoted by bootstrap-admin");

  // The last phase: promoting it completes the rollout.
  r = wait_for(
      "r1", [](const v1::Rollout& x) { return phase_baking(x, 1); }, "baked phase 1");
  EXPECT_EQ(r.phases(1).updated(), 2u);
  ASSERT_TRUE(call(&Stub::PromoteRollout, "r1", &r).ok());
  EXPECT_EQ(r.state(), "completed");
  EXPECT_EQ(r.reason(), "last phase promoted by bootstrap-admin");
  EXPECT_EQ(r.phases(1).state(), "passed");

  for (auto m :
       {&Stub::PauseRollout, &Stub::ResumeRollout, &Stub::PromoteRollout, &Stub::AbortRollout}) {
    expect_refused(call(m, "r1", &r), "rollout 'r1' is completed;");
  }
}

TEST_F(RolloutCommands, AbortEndsAbortedAndFreesTheDevices) {
  v1::Rollout r;
  ASSERT_TRUE(create("r2", {{100, 3600}}, "", &r).ok());
  r = wait_for(
      "r2", [](const v1::Rollout& x) { return phase_baking(x, 0); }, "baked");
  ASSERT_TRUE(call(&Stub::AbortRollout, "r2", &r).ok());
  EXPECT_EQ(r.state(), "aborting");
  EXPECT_EQ(r.reason(), "aborted by bootstrap-admin");
  // The engine is woken by the abort and may end it before the next call: "is aborting"
  // or "is aborted", refused either way.
  expect_refused(call(&Stub::AbortRollout, "r2", &r),
                 "; abort needs it running, paused or rolling_back");
  expect_refused(call(&Stub::ResumeRollout, "r2", &r), "; resume needs it paused");
  r = wait_for(
      "r2", [](const v1::Rollout& x) { return x.state() == "aborted"; }, "aborted");
  EXPECT_EQ(r.reason(), "aborted by bootstrap-admin");
  EXPECT_EQ(r.rolled_back_devices(), 4u);
  expect_refused(call(&Stub::AbortRollout, "r2", &r), "is aborted;");
  // An aborted rollout holds no device: the next one may take them.
  ASSERT_TRUE(create("r3", {{100, 3600}}, "", &r).ok());

  // Abort from paused too.
  ASSERT_TRUE(call(&Stub::PauseRollout, "r3", &r).ok());
  ASSERT_TRUE(call(&Stub::AbortRollout, "r3", &r).ok());
  EXPECT_EQ(r.state(), "aborting");
  wait_for(
      "r3", [](const v1::Rollout& x) { return x.state() == "aborted"; }, "aborted");
}

TEST_F(RolloutCommands, UnknownRolloutsAndViewersAreRefused) {
  v1::Rollout r;
  for (auto m :
       {&Stub::PauseRollout, &Stub::ResumeRollout, &Stub::PromoteRollout, &Stub::AbortRollout}) {
    auto s = call(m, "nope", &r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
    EXPECT_EQ(s.error_message(), "rollout 'nope' does not exist");
  }
  ASSERT_TRUE(create("r4", {{100, 3600}}, "", &r).ok());
  const auto viewer = make_token("viewer", v1::ROLE_VIEWER);
  for (auto m :
       {&Stub::PauseRollout, &Stub::ResumeRollout, &Stub::PromoteRollout, &Stub::AbortRollout}) {
    EXPECT_EQ(call(m, "r4", &r, viewer).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  ASSERT_TRUE(call(&Stub::GetRollout, "r4", &r, viewer).ok());
  EXPECT_EQ(r.state(), "running");
}

TEST_F(RolloutCommands, SkipGatesNeedsAnAdminAndAReasonAndIsAudited) {
  v1::Rollout r;
  ASSERT_TRUE(create("r5", {{50, 3600}, {100, 3600}}, "accuracy >= 0.8", &r).ok());
  r = wait_for(
      "r5", [](const v1::Rollout& x) { return phase_baking(x, 0); }, "baked phase 0");
  const auto skip = [&](const std::string& token, const std::string& reason) {
    v1::SkipGatesRequest req;
    req.set_name("r5");
    req.set_reason(reason);
    return rollouts_->SkipGates(context_with_token(token).get(), req, &r);
  };
  // No accuracy reported: Promote is refused; skipping the gates is an admin's call.
  expect_refused(call(&Stub::PromoteRollout, "r5", &r), "gate 'accuracy >= 0.8' has no data yet");
  const auto op = make_token("op", v1::ROLE_OPERATOR);
  auto s = skip(op, "hotfix");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  s = skip(admin_, "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(s.error_message(), "skipping the gates needs a reason");
  EXPECT_EQ(skip(admin_, "a\nb").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(skip(admin_, std::string(501, 'x')).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Not while paused (resume first), as Promote.
  ASSERT_TRUE(call(&Stub::PauseRollout, "r5", &r).ok());
  expect_refused(skip(admin_, "hotfix"), "is paused; promote needs it running");
  ASSERT_TRUE(call(&Stub::ResumeRollout, "r5", &r).ok());

  ASSERT_TRUE(skip(admin_, "hotfix for ticket 42").ok());
  EXPECT_EQ(r.state(), "running");
  EXPECT_EQ(r.current_phase(), 1u);
  EXPECT_EQ(r.phases(0).state(), "passed");
  EXPECT_EQ(r.reason(), "phase 0 promoted by bootstrap-admin, gates skipped: hotfix for ticket 42");
  auto audit = scratch_.db().transact([](pqxx::work& w) {
    return w.exec(
        "SELECT actor, details->>'reason', details->>'phase' FROM audit_log WHERE action = "
        "'rollout.skip_gates' AND object = 'rollout/r5'");
  });
  ASSERT_TRUE(audit);
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0][0].as<std::string>(), "bootstrap-admin");
  EXPECT_EQ((*audit)[0][1].as<std::string>(), "hotfix for ticket 42");
  EXPECT_EQ((*audit)[0][2].as<std::string>(), "0");
}

// Eight CreateRollouts at once over the same devices: one wins, every other is
// FAILED_PRECONDITION naming a device and the rollout holding it; no device is in two
// active rollouts. Four rounds (the first over the fixture's four devices, the others over
// 40 devices of their own tag), since whether two creations overlap is up to the
// scheduler.
TEST_F(RolloutCommands, ConcurrentCreatesEnrolEachDeviceOnce) {
  constexpr int kCalls = 8, kRounds = 4;
  ASSERT_TRUE(scratch_.db().transact([&](pqxx::work& w) {
    for (int round = 1; round < kRounds; ++round) {
      for (int i = 0; i < 40; ++i) {
        const std::string id = "dev-r" + std::to_string(round) + "-" + std::to_string(i);
        storage::devices::create(w,
                                 {id, "default", kSeedClass, {"r" + std::to_string(round)}, "h"});
        w.exec_params("UPDATE devices SET current_artifact_sha256 = $2 WHERE id = $1", id,
                      fleet_.artifact);
      }
    }
    return 0;
  }));
  int raced = 0;  // refusals by the database's index (the check had passed)
  for (int round = 0; round < kRounds; ++round) {
    const std::string tag = round == 0 ? "t" : "r" + std::to_string(round);
    std::vector<grpc::Status> results(kCalls);
    std::vector<std::thread> threads;
    std::atomic<int> ready{0};
    for (int i = 0; i < kCalls; ++i) {
      threads.emplace_back([&, i] {
        // All at once: each waits until every thread is ready.
        ++ready;
        while (ready.load() < kCalls) std::this_thread::yield();
        v1::CreateRolloutRequest req;
        req.set_name("c" + std::to_string(round) + "-" + std::to_string(i));
        req.set_model("digits");
        req.set_version(1);
        req.mutable_selector()->add_tags(tag);
        req.add_phases()->set_percent(100);
        req.mutable_phases(0)->set_bake_seconds(3600);
        v1::Rollout out;
        results[i] = rollouts_->CreateRollout(context_with_token(admin_).get(), req, &out);
      });
    }
    for (auto& t : threads) t.join();
    int ok = 0;
    for (const auto& s : results) {
      if (s.ok()) {
        ++ok;
        continue;
      }
      EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
      EXPECT_NE(s.error_message().find("device 'dev-"), std::string::npos) << s.error_message();
      raced += s.error_message().find("(created at the same time)") != std::string::npos;
      EXPECT_NE(s.error_message().find("is in active rollout 'c" + std::to_string(round) + "-"),
                std::string::npos)
          << s.error_message();
    }
    EXPECT_EQ(ok, 1) << "round " << round;
  }
  auto twice = scratch_.db().transact([](pqxx::work& w) {
    return w
        .exec1(
            "SELECT count(*) FROM (SELECT rd.device_id FROM rollout_devices rd JOIN rollouts r "
            "ON r.id = rd.rollout_id WHERE r.state IN ('running', 'paused', 'rolling_back', "
            "'aborting') GROUP BY rd.device_id HAVING count(*) > 1) x")[0]
        .as<int>();
  });
  ASSERT_TRUE(twice);
  EXPECT_EQ(*twice, 0);
  EXPECT_EQ(count_rows("rollouts"), kRounds);
  // The calls did overlap: some passed the check and were refused by the index.
  EXPECT_GT(raced, 0);
}

// ListRollouts returns at most 100 a call (50 by default), oldest first, with a page
// token to the next page; a token it did not make is INVALID_ARGUMENT.
TEST_F(RolloutCommands, ListRolloutsIsPagedAndCapped) {
  ASSERT_TRUE(scratch_.db().transact([&](pqxx::work& w) {
    for (int i = 0; i < 105; ++i) {
      server::rollouts::repo::NewRollout r;
      r.name = "l" + std::to_string(1000 + i);
      r.fleet = "default";
      r.selector_json = "{}";
      r.on_failure = "rollback";
      r.version_id = fleet_.version_id;
      r.rate_per_minute = 600;
      r.phases = {{100, 0}};
      server::rollouts::repo::insert(w, r, {}, {});
    }
    w.exec("UPDATE rollouts SET state = 'paused'");
    return 0;
  }));
  const auto list = [&](uint32_t size, const std::string& token, v1::ListRolloutsResponse* out) {
    v1::ListRolloutsRequest req;
    req.set_page_size(size);
    req.set_page_token(token);
    return rollouts_->ListRollouts(context_with_token(admin_).get(), req, out);
  };
  v1::ListRolloutsResponse page;
  ASSERT_TRUE(list(0, "", &page).ok());
  EXPECT_EQ(page.rollouts_size(), 50);
  EXPECT_EQ(page.rollouts(0).name(), "l1000");
  EXPECT_FALSE(page.next_page_token().empty());
  ASSERT_TRUE(list(1000, "", &page).ok());
  EXPECT_EQ(page.rollouts_size(), 100);
  ASSERT_TRUE(list(1000, page.next_page_token(), &page).ok());
  ASSERT_EQ(page.rollouts_size(), 5);
  EXPECT_EQ(page.rollouts(0).name(), "l1100");
  EXPECT_EQ(page.rollouts(4).name(), "l1104");
  EXPECT_TRUE(page.next_page_token().empty());
  // Every rollout once, through the tokens.
  std::set<std::string> seen;
  std::string token;
  int calls = 0;
  do {
    ASSERT_TRUE(list(7, token, &page).ok());
    for (const auto& r : page.rollouts()) EXPECT_TRUE(seen.insert(r.name()).second) << r.name();
    token = page.next_page_token();
  } while (!token.empty() && ++calls < 100);
  EXPECT_EQ(seen.size(), 105u);
  auto s = list(10, "not-a-token", &page);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
}

}  // namespace
}  // namespace tinyfleet::testing
