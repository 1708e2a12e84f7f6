// The rollout repository on a real PostgreSQL: every state change is a compare-and-set
// that a concurrent change beats (and then writes nothing), two writers racing on the
// same devices each win a device once, the schema refuses states the module does
// not name (migration 0005), and a device is active in one rollout at most, even when
// two creations check at the same time (migration 0010), and a deposed leader's write is
// refused by the lease epoch (migration 0014).
#include <gtest/gtest.h>
#include <sodium.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "rollout_seed.h"
#include "rollouts/offer_batch.h"
#include "rollouts/repository.h"
#include "rollouts/status_batch.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/testing/scratch_database.h"

namespace tinyfleet::testing {
namespace {

namespace repo = server::rollouts::repo;
using server::rollouts::RolloutEvent;
using server::rollouts::RolloutState;

class RolloutRepository : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_GE(sodium_init(), 0); }

  // A running rollout of `fleet` in phases (percent, bake).
  int64_t create(const std::string& name, const SeededFleet& fleet,
                 std::vector<std::pair<int, int>> phases = {{50, 0}, {100, 0}}) {
    std::vector<server::rollouts::Candidate> selected;
    for (const auto& d : fleet.devices) selected.push_back({d, kSeedClass, {}});
    std::vector<int> percents;
    for (const auto& p : phases) percents.push_back(p.first);
    repo::NewRollout r;
    r.name = name;
    r.fleet = "default";
    r.selector_json = "{}";
    r.on_failure = "rollback";
    r.version_id = fleet.version_id;
    r.rate_per_minute = 600;
    r.phases = phases;
    auto id = db().transact([&](pqxx::work& w) {
      return repo::insert(w, r, server::rollouts::place(name, selected, percents),
                          {{kSeedClass, fleet.artifact}});
    });
    EXPECT_TRUE(id) << id.error().message;
    return id ? *id : 0;
  }
  SeededFleet seed(int n) {
    auto f = db().transact([&](pqxx::work& w) { return seed_fleet(w, n, false); });
    EXPECT_TRUE(f) << f.error().message;
    return *f;
  }
  repo::View view(const std::string& name) {
    auto v = db().transact([&](pqxx::work& w) { return repo::view(w, name); });
    EXPECT_TRUE(v && *v);
    return v && *v ? **v : repo::View{};
  }
  template <class F>
  bool run(F f) {
    auto r = db().transact([&](pqxx::work& w) { return f(w); });
    EXPECT_TRUE(r) << r.error().message;
    return r && *r;
  }
  storage::Database& db() { return scratch_.db(); }
  ScratchDatabase scratch_{/*pool_size=*/3};
};

TEST_F(RolloutRepository, CreatedRunningWithItsDevicesPending) {
  const auto fleet = seed(10);
  create("r", fleet);
  const auto v = view("r");
  EXPECT_EQ(v.state, "running");
  EXPECT_EQ(v.selected, 10);
  ASSERT_EQ(v.phases.size(), 2u);
  EXPECT_EQ(v.phases[0].state, "active");
  EXPECT_EQ(v.phases[1].state, "pending");
  EXPECT_EQ(v.phases[0].devices, 5);
  EXPECT_EQ(v.phases[1].devices, 5);
  EXPECT_EQ(v.phases[0].admitted, 0);
  auto taken = db().transact([&](pqxx::work& w) {
    return repo::first_taken(w, {"dev-1003", "nobody"});
  });
  ASSERT_TRUE(taken && *taken);
  EXPECT_EQ((*taken)->first, "dev-1003");
  EXPECT_EQ((*taken)->second, "r");
}

TEST_F(RolloutRepository, AStateChangeOnAStaleStateLosesAndWritesNothing) {
  const auto fleet = seed(4);
  const int64_t id = create("r", fleet);
  // The engine read "running, phase 0"; an operator aborts before it writes.
  EXPECT_TRUE(run([&](pqxx::work& w) {
    return repo::change_state(w, id, RolloutState::kRunning, RolloutEvent::kAbort, "aborted by x");
  }));
  EXPECT_FALSE(run([&](pqxx::work& w) { return repo::start_baking(w, id, 0); }));
  EXPECT_FALSE(run([&](pqxx::work& w) { return repo::note_gates(w, id, "waits", "[]"); }));
  EXPECT_FALSE(run([&](pqxx::work& w) { return repo::finish_phase(w, id, 0, 2, false, ""); }));
  EXPECT_FALSE(run([&](pqxx::work& w) { return repo::finish_phase(w, id, 0, 2, true, ""); }));
  EXPECT_FALSE(run([&](pqxx::work& w) {
    return repo::fail_phase(w, id, 0, RolloutEvent::kGateFailedRollback, "gate");
  }));
  EXPECT_FALSE(run([&](pqxx::work& w) { return repo::resume(w, id, 0, "resumed"); }));
  EXPECT_FALSE(run([&](pqxx::work& w) {
    return repo::change_state(w, id, RolloutState::kRunning, RolloutEvent::kPause, "paused");
  }));
  EXPECT_FALSE(run([&](pqxx::work& w) { return repo::hold_if(w, id, RolloutState::kRunning); }));
  auto v = view("r");
  EXPECT_EQ(v.state, "aborting");
  EXPECT_EQ(v.reason, "aborted by x");
  EXPECT_EQ(v.current_phase, 0);
  EXPECT_EQ(v.phases[0].state, "active");
  EXPECT_EQ(v.phases[1].state, "pending");
  EXPECT_EQ(v.gate_report_json, "[]");
  // The transition table is consulted too: aborting ends only as aborted.
  EXPECT_FALSE(run([&](pqxx::work& w) {
    return repo::change_state(w, id, RolloutState::kAborting, RolloutEvent::kResume, "");
  }));
  EXPECT_TRUE(run([&](pqxx::work& w) {
    return repo::change_state(w, id, RolloutState::kAborting, RolloutEvent::kRevertsDone, "done");
  }));
  EXPECT_EQ(view("r").state, "aborted");
}

TEST_F(RolloutRepository, PromotionIsWrittenOnceAndWinsOnce) {
  const auto fleet = seed(4);
  const int64_t id = create("r", fleet);
  // Two promoters of phase 0 at once (engine and operator): one wins.
  std::atomic<int> wins{0};
  std::vector<std::thread> ts;
  for (int k = 0; k < 2; ++k) {
    ts.emplace_back([&, k] {
      auto r = db().transact(
          [&](pqxx::work& w) { return repo::finish_phase(w, id, 0, 2, k == 1, "p"); });
      if (r && *r) ++wins;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(wins.load(), 1);
  auto v = view("r");
  EXPECT_EQ(v.state, "running");
  EXPECT_EQ(v.current_phase, 1);
  EXPECT_EQ(v.phases[0].state, "passed");
  EXPECT_EQ(v.phases[1].state, "active");
  // The last phase completes the rollout and keeps it on that phase.
  EXPECT_TRUE(run([&](pqxx::work& w) { return repo::finish_phase(w, id, 1, 2, true, "done"); }));
  v = view("r");
  EXPECT_EQ(v.state, "completed");
  EXPECT_EQ(v.current_phase, 1);
  EXPECT_EQ(v.phases[1].state, "passed");
}

TEST_F(RolloutRepository, AGateFailurePausesAndResumeBakesAgain) {
  const auto fleet = seed(4);
  const int64_t id = create("r", fleet);
  EXPECT_TRUE(run([&](pqxx::work& w) { return repo::start_baking(w, id, 0); }));
  EXPECT_FALSE(run([&](pqxx::work& w) { return repo::start_baking(w, id, 0); }));  // once
  EXPECT_TRUE(run([&](pqxx::work& w) {
    return repo::fail_phase(w, id, 0, RolloutEvent::kGateFailedPause, "gate 'x' failed");
  }));
  auto v = view("r");
  EXPECT_EQ(v.state, "paused");
  EXPECT_EQ(v.phases[0].state, "failed");
  EXPECT_TRUE(run([&](pqxx::work& w) { return repo::resume(w, id, 0, "resumed by x"); }));
  v = view("r");
  EXPECT_EQ(v.state, "running");
  EXPECT_EQ(v.phases[0].state, "active");
}

// Two writers on two connections drive the same rollout's devices at once, in
// opposite orders and in multi-device transactions (so they also deadlock and retry):
// every device is won exactly once and ends in exactly one state.
TEST_F(RolloutRepository, TwoWritersRacingOnDevicesEachWinADeviceOnce) {
  constexpr int kDevices = 120;
  constexpr int kBatch = 8;
  const auto fleet = seed(kDevices);
  const int64_t id = create("r", fleet, {{100, 0}});
  std::atomic<int> wins{0}, errors{0};
  auto writer = [&](bool ascending) {
    for (int start = 0; start < kDevices; start += kBatch) {
      auto r = db().transact([&](pqxx::work& w) {
        int won = 0;
        for (int k = 0; k < kBatch && start + k < kDevices; ++k) {
          const int i = ascending ? start + k : kDevices - 1 - (start + k);
          const auto& d = fleet.devices[i];
          won += ascending ? repo::mark_updated_in_place(w, id, d, fleet.artifact)
                           : repo::mark_unofferable(w, id, d, false, "cannot build");
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
  std::thread a(writer, true), b(writer, false);
  a.join();
  b.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(wins.load(), kDevices);
  const auto v = view("r");
  EXPECT_EQ(v.phases[0].updated + v.phases[0].failed, kDevices);
  EXPECT_EQ(v.phases[0].admitted, kDevices);
  EXPECT_GT(v.phases[0].updated, 0);
  EXPECT_GT(v.phases[0].failed, 0);
}

TEST_F(RolloutRepository, AnOfferIsStoredOnlyForADeviceInTheExpectedState) {
  const auto fleet = seed(2);
  const int64_t id = create("r", fleet, {{100, 0}});
  const auto payload =
      *db().transact([](pqxx::work& w) { return storage::PgBlobStore::put(w, "payload"); });
  repo::StoredOffer o{7, fleet.artifact, "", payload, "offer-bytes"};
  EXPECT_TRUE(run([&](pqxx::work& w) { return repo::record_offer(w, id, "dev-1000", false, o); }));
  EXPECT_FALSE(run([&](pqxx::work& w) { return repo::record_offer(w, id, "dev-1000", false, o); }));
  // Reverting needs the device offered or updated: dev-1001 is still pending.
  o.release = 8;
  EXPECT_FALSE(run([&](pqxx::work& w) { return repo::record_offer(w, id, "dev-1001", true, o); }));
  EXPECT_TRUE(run([&](pqxx::work& w) { return repo::record_offer(w, id, "dev-1000", true, o); }));
  auto rows = db().transact([&](pqxx::work& w) {
    return w.exec("SELECT device_id, release_seq FROM device_offers ORDER BY device_id");
  });
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0][1].as<int64_t>(), 8);
  auto out = db().transact([](pqxx::work& w) { return repo::outstanding(w); });
  ASSERT_TRUE(out);
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].offer, "offer-bytes");
  EXPECT_EQ((*out)[0].release, 8u);
}

// Admission stores a batch's offers in a few statements (issue 21, point 4): the rows are
// those record_offer leaves one device at a time, binary offers intact; a device no
// longer pending (taken by another writer) gets nothing stored, and the batch says so.
TEST_F(RolloutRepository, OffersStoredInOneBatchDoWhatEachWouldAlone) {
  const auto fleet = seed(7);
  const int64_t id = create("r", fleet, {{100, 0}});
  const auto payload =
      *db().transact([](pqxx::work& w) { return storage::PgBlobStore::put(w, "payload"); });
  std::string binary(600, '\0');  // every byte value, quotes and backslashes among them
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i * 7);
  // dev-1000..1002 alone; dev-1003..1005 in one batch with the same offers; dev-1006 was
  // already offered by another writer and is in the batch too.
  const auto offer = [&](int k) {
    return repo::StoredOffer{static_cast<uint64_t>(20 + k), fleet.artifact, k == 1 ? "" : "base",
                             payload, binary + std::to_string(k)};
  };
  for (int k = 0; k < 3; ++k) {
    ASSERT_TRUE(run([&](pqxx::work& w) {
      return repo::record_offer(w, id, fleet.devices[k], false, offer(k));
    }));
  }
  ASSERT_TRUE(run(
      [&](pqxx::work& w) { return repo::record_offer(w, id, fleet.devices[6], false, offer(9)); }));
  std::vector<std::pair<std::string, repo::StoredOffer>> batch;
  for (int k = 0; k < 3; ++k) batch.emplace_back(fleet.devices[3 + k], offer(k));
  batch.emplace_back(fleet.devices[6], offer(5));
  auto won = db().transact([&](pqxx::work& w) { return repo::record_offers(w, id, batch); });
  ASSERT_TRUE(won) << won.error().message;
  EXPECT_EQ(*won, (std::set<std::string>{fleet.devices[3], fleet.devices[4], fleet.devices[5]}));
  auto row = [&](const std::string& device) {
    return *db().transact([&](pqxx::work& w) {
      auto r = w.exec_params1(
          "SELECT rd.state || ' | ' || rd.release_seq || ' | ' || COALESCE(rd.base_artifact, "
          "'null') || ' | ' || (rd.offered_at IS NOT NULL) || ' | ' || o.release_seq || ' | ' "
          "|| o.target_artifact || ' | ' || o.payload_sha256 || ' | ' || encode(o.offer, 'hex') "
          "|| ' | ' || (o.published_at IS NULL) FROM rollout_devices rd JOIN device_offers o ON "
          "o.device_id = rd.device_id WHERE rd.rollout_id = $1 AND rd.device_id = $2",
          id, device);
      return r[0].as<std::string>();
    });
  };
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(row(fleet.devices[k]), row(fleet.devices[3 + k])) << k;
  }
  EXPECT_NE(row(fleet.devices[4]).find("| null |"), std::string::npos);  // no base: NULL
  // dev-1006 keeps the offer of the writer that took it first (release 29, not 25).
  EXPECT_EQ(row(fleet.devices[6]).rfind("offered | 29 |", 0), 0u) << row(fleet.devices[6]);
  EXPECT_TRUE(*db().transact([&](pqxx::work& w) { return repo::record_offers(w, id, {}); }) ==
              std::set<std::string>{});
  // The PUBACKs, marked in one statement: only an offer of that release, and only once.
  const auto mark = [&](std::vector<std::pair<std::string, uint64_t>> acked) {
    return *db().transact([&](pqxx::work& w) { return repo::mark_published(w, acked); });
  };
  EXPECT_EQ(mark({{fleet.devices[3], 20}, {fleet.devices[4], 99}, {fleet.devices[5], 22}}), 2);
  EXPECT_EQ(mark({{fleet.devices[3], 20}}), 0);  // already marked
  EXPECT_EQ(row(fleet.devices[3]).substr(row(fleet.devices[3]).size() - 5), "false");
  EXPECT_EQ(row(fleet.devices[4]).substr(row(fleet.devices[4]).size() - 4), "true");
}

// A deposed leader's late write is refused (issue 21): leader A takes the lease (epoch
// e), leader B takes it after (e + 1); A's offer under epoch e is refused in its own
// transaction and nothing of it is stored, B's goes through, and a write in flight under
// A's epoch holds B's takeover back until it commits (the lease row is taken FOR SHARE).
TEST_F(RolloutRepository, ADeposedLeadersLateWriteIsRefused) {
  const auto fleet = seed(2);
  const int64_t id = create("r", fleet, {{100, 0}});
  const auto payload =
      *db().transact([](pqxx::work& w) { return storage::PgBlobStore::put(w, "payload"); });
  auto a = db().transact([](pqxx::work& w) { return repo::take_lease(w); });
  ASSERT_TRUE(a) << a.error().message;
  auto b = db().transact([](pqxx::work& w) { return repo::take_lease(w); });
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(*b, *a + 1);
  const auto offer_under = [&](int64_t epoch, const std::string& device, uint64_t release) {
    return db().transact([&](pqxx::work& w) {
      repo::hold_lease(w, epoch);
      return repo::record_offer(w, id, device, false,
                                {release, fleet.artifact, "", payload, "offer-bytes"});
    });
  };
  const auto late = offer_under(*a, "dev-1000", 7);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, storage::ErrorCode::kFailedPrecondition);
  EXPECT_EQ(late.error().message.rfind(repo::kFenced, 0), 0u) << late.error().message;
  EXPECT_NE(late.error().message.find("epoch is " + std::to_string(*a)), std::string::npos)
      << late.error().message;
  auto state = [&](const std::string& device) {
    return *db().transact([&](pqxx::work& w) {
      return w.exec_params1("SELECT state FROM rollout_devices WHERE device_id = $1", device)[0]
          .as<std::string>();
    });
  };
  EXPECT_EQ(state("dev-1000"), "pending");
  auto offers = db().transact(
      [](pqxx::work& w) { return w.exec1("SELECT count(*) FROM device_offers")[0].as<int>(); });
  EXPECT_EQ(*offers, 0);
  const auto current = offer_under(*b, "dev-1000", 8);
  ASSERT_TRUE(current) << current.error().message;
  EXPECT_TRUE(*current);
  EXPECT_EQ(state("dev-1000"), "offered");

  // B's write in flight (its transaction holds the lease row FOR SHARE) while C takes over:
  // C's increment waits for it, so B's write commits under B's epoch, then B is fenced.
  std::atomic<bool> held{false}, release{false};
  std::thread in_flight([&] {
    auto r = db().transact([&](pqxx::work& w) {
      repo::hold_lease(w, *b);
      held = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return repo::record_offer(w, id, "dev-1001", false,
                                {9, fleet.artifact, "", payload, "offer-bytes"});
    });
    EXPECT_TRUE(r && *r);
  });
  while (!held) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::atomic<int64_t> c{0};
  std::thread takeover([&] {
    auto r = db().transact([](pqxx::work& w) { return repo::take_lease(w); });
    if (r) c = *r;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(c.load(), 0) << "the new leader's increment did not wait for the write in flight";
  release = true;
  in_flight.join();
  takeover.join();
  EXPECT_EQ(c.load(), *b + 1);
  EXPECT_EQ(state("dev-1001"), "offered");
  EXPECT_FALSE(db().transact([&](pqxx::work& w) {
    repo::hold_lease(w, *b);
    return true;
  }));
}

// A device refusing its offer because of the offer's base is offered again, at most
// kMaxBaseRefusals times; then it fails with its reason (issue 19, point 7). Another
// refusal fails it at once. The offered payload is found for its release only.
TEST_F(RolloutRepository, PlainReportsInOneBatchDoWhatEachWouldAlone) {
  // Six devices in three pairs: each pair gets the same report, one device through
  // apply_status, the other in one apply_plain_statuses batch; their rows must agree.
  const auto fleet = seed(6);
  const int64_t id = create("r", fleet, {{100, 0}});
  const auto payload =
      *db().transact([](pqxx::work& w) { return storage::PgBlobStore::put(w, "payload"); });
  for (int i = 0; i < 6; ++i) {
    repo::StoredOffer o{static_cast<uint64_t>(10 + i), fleet.artifact, "", payload, "offer"};
    ASSERT_TRUE(
        run([&](pqxx::work& w) { return repo::record_offer(w, id, fleet.devices[i], false, o); }));
  }
  server::rollouts::StatusReport installed;
  installed.state = update::UpdateState::kCommitted;
  installed.artifact = fleet.artifact;
  // The third of each group installed the target and is being returned to no model.
  for (int i : {2, 5}) {
    installed.release = 10 + i;
    ASSERT_TRUE(run([&](pqxx::work& w) {
      return repo::apply_status(w, "default", fleet.devices[i], installed, true) == 1;
    }));
    repo::StoredOffer back{static_cast<uint64_t>(50 + i), "", fleet.artifact, payload, "no model"};
    ASSERT_TRUE(run(
        [&](pqxx::work& w) { return repo::record_offer(w, id, fleet.devices[i], true, back); }));
  }
  std::vector<server::rollouts::StatusReport> reports(3);
  reports[0] = installed;                                // the target runs: updated
  reports[1].state = update::UpdateState::kDownloading;  // still offered, "updating"
  reports[1].artifact = "";
  reports[2].state = update::UpdateState::kIdle;  // back on no model: rolled back
  std::vector<repo::PlainStatus> batch;
  for (int k = 0; k < 3; ++k) {
    reports[k].release = k == 2 ? 50 : 10;
    ASSERT_TRUE(repo::plain(reports[k]));
    server::rollouts::StatusReport alone = reports[k];
    alone.release += k;
    reports[k].release += 3 + k;
    ASSERT_TRUE(run([&](pqxx::work& w) {
      repo::apply_status(w, "default", fleet.devices[k], alone, true);
      return true;
    }));
    batch.push_back({"default", fleet.devices[3 + k], &reports[k]});
  }
  ASSERT_TRUE(run([&](pqxx::work& w) { return repo::apply_plain_statuses(w, batch) == 2; }));
  auto row = [&](const std::string& device) {
    return *db().transact([&](pqxx::work& w) {
      auto r = w.exec_params1(
          "SELECT rd.state || ' | ' || d.status || ' | ' || COALESCE(d.current_artifact_sha256, "
          "'none') FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id WHERE "
          "rd.rollout_id = $1 AND rd.device_id = $2",
          id, device);
      return r[0].as<std::string>();
    });
  };
  const char* expected[] = {"updated | online | ", "offered | updating | none",
                            "rolled_back | online | none"};
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(row(fleet.devices[k]), row(fleet.devices[3 + k])) << k;
    EXPECT_EQ(row(fleet.devices[3 + k]).rfind(expected[k], 0), 0u) << row(fleet.devices[3 + k]);
  }
  EXPECT_FALSE(repo::plain(server::rollouts::StatusReport{
      update::StatusEvent::kOfferRefused, update::UpdateState::kIdle, "", "", 0, 0, {}}));
}

TEST_F(RolloutRepository, BaseRefusalsAreCappedThenTheDeviceFails) {
  const auto fleet = seed(2);
  const int64_t id = create("r", fleet, {{100, 0}});
  const auto payload =
      *db().transact([](pqxx::work& w) { return storage::PgBlobStore::put(w, "payload"); });
  server::rollouts::StatusReport refusal;
  refusal.event = update::StatusEvent::kOfferRefused;
  refusal.refusal = update::OfferStatus::kBaseMismatch;
  refusal.detail = "base mismatch";
  auto state = [&](const std::string& device) {
    return *db().transact([&](pqxx::work& w) {
      auto r = w.exec_params1(
          "SELECT state || ' | ' || error FROM rollout_devices WHERE rollout_id = $1 AND "
          "device_id = $2",
          id, device);
      return r[0].as<std::string>();
    });
  };
  for (int i = 1; i <= repo::kMaxBaseRefusals; ++i) {
    repo::StoredOffer o{static_cast<uint64_t>(10 + i), fleet.artifact, "", payload, "offer"};
    refusal.refused_release = static_cast<int64_t>(o.release);
    ASSERT_TRUE(
        run([&](pqxx::work& w) { return repo::record_offer(w, id, "dev-1000", false, o); }));
    auto sha = db().transact(
        [&](pqxx::work& w) { return repo::offered_payload(w, "dev-1000", o.release); });
    ASSERT_TRUE(sha && *sha);
    EXPECT_EQ(**sha, payload);
    auto none = db().transact(
        [&](pqxx::work& w) { return repo::offered_payload(w, "dev-1000", o.release + 100); });
    EXPECT_TRUE(none && !*none);
    EXPECT_TRUE(run([&](pqxx::work& w) {
      return repo::apply_status(w, "default", "dev-1000", refusal, true) == 1;
    }));
    if (i < repo::kMaxBaseRefusals) {
      EXPECT_EQ(state("dev-1000"), "pending | refused: base mismatch") << i;
    }
  }
  EXPECT_EQ(state("dev-1000"), "failed | refused 3 times: base mismatch");

  // A refusal naming no release (the offer did not verify far enough) applies to the offer.
  refusal.refusal = update::OfferStatus::kBadSignature;
  refusal.detail = "signature";
  refusal.refused_release = 0;
  repo::StoredOffer o{20, fleet.artifact, "", payload, "offer"};
  ASSERT_TRUE(run([&](pqxx::work& w) { return repo::record_offer(w, id, "dev-1001", false, o); }));
  EXPECT_TRUE(run([&](pqxx::work& w) {
    return repo::apply_status(w, "default", "dev-1001", refusal, true) == 1;
  }));
  EXPECT_EQ(state("dev-1001"), "failed | refused: signature");
}

// A device refuses release 11 (base mismatch) and is offered 12 from the base it reported.
// Its retained refusal of 11, replayed when a new leader subscribes, leaves the offer of 12
// alone; a refusal of 12 applies.
TEST_F(RolloutRepository, AReplayedRefusalOfAnEarlierReleaseLeavesANewerOfferAlone) {
  const auto fleet = seed(1);
  const int64_t id = create("r", fleet, {{100, 0}});
  const auto payload =
      *db().transact([](pqxx::work& w) { return storage::PgBlobStore::put(w, "payload"); });
  const std::string device = fleet.devices[0];
  auto state = [&] {
    return *db().transact([&](pqxx::work& w) {
      return w
          .exec_params1(
              "SELECT state || ' ' || release_seq || ' ' || base_refusals FROM rollout_devices "
              "WHERE rollout_id = $1 AND device_id = $2",
              id, device)[0]
          .as<std::string>();
    });
  };
  server::rollouts::StatusReport refusal;
  refusal.event = update::StatusEvent::kOfferRefused;
  refusal.refusal = update::OfferStatus::kBaseMismatch;
  refusal.detail = "base mismatch";
  refusal.refused_release = 11;
  repo::StoredOffer o{11, fleet.artifact, "", payload, "offer"};
  ASSERT_TRUE(run([&](pqxx::work& w) { return repo::record_offer(w, id, device, false, o); }));
  EXPECT_TRUE(run(
      [&](pqxx::work& w) { return repo::apply_status(w, "default", device, refusal, true) == 1; }));
  EXPECT_EQ(state(), "pending 11 1");
  o.release = 12;
  ASSERT_TRUE(run([&](pqxx::work& w) { return repo::record_offer(w, id, device, false, o); }));
  EXPECT_TRUE(run(
      [&](pqxx::work& w) { return repo::apply_status(w, "default", device, refusal, true) == 0; }));
  EXPECT_EQ(state(), "offered 12 1");
  refusal.refused_release = 12;
  EXPECT_TRUE(run(
      [&](pqxx::work& w) { return repo::apply_status(w, "default", device, refusal, true) == 1; }));
  EXPECT_EQ(state(), "pending 12 2");
}

// Two creations both find the devices free (first_taken), then both insert: the second
// is refused by the one-active-rollout index, naming it. Once the first rollout ends
// (a final state), its devices may join another rollout.
TEST_F(RolloutRepository, ADeviceIsActiveInOneRolloutEvenWhenTwoCreationsRace) {
  const auto fleet = seed(3);
  const std::set<std::string> devices(fleet.devices.begin(), fleet.devices.end());
  std::vector<server::rollouts::Candidate> selected;
  for (const auto& d : fleet.devices) selected.push_back({d, kSeedClass, {}});
  const auto rollout = [&](const std::string& name) {
    repo::NewRollout r;
    r.name = name;
    r.fleet = "default";
    r.selector_json = "{}";
    r.on_failure = "rollback";
    r.version_id = fleet.version_id;
    r.rate_per_minute = 600;
    r.phases = {{100, 0}};
    return r;
  };
  pqxx::connection ca(scratch_.uri()), cb(scratch_.uri());
  pqxx::work a(ca), b(cb);
  EXPECT_FALSE(repo::first_taken(a, devices));
  EXPECT_FALSE(repo::first_taken(b, devices));
  const int64_t first = repo::insert(a, rollout("a"), server::rollouts::place("a", selected, {100}),
                                     {{kSeedClass, fleet.artifact}});
  a.commit();
  try {
    repo::insert(b, rollout("b"), server::rollouts::place("b", selected, {100}),
                 {{kSeedClass, fleet.artifact}});
    ADD_FAILURE() << "a second active rollout took the same devices";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "23505") << e.what();
    EXPECT_NE(std::string(e.what()).find(repo::kOneActiveRolloutIndex), std::string::npos)
        << e.what();
  }
  b.abort();
  // Aborted, then every device back: the rollout ends and frees its devices.
  EXPECT_TRUE(run([&](pqxx::work& w) {
    return repo::change_state(w, first, RolloutState::kRunning, RolloutEvent::kAbort, "x") &&
           repo::change_state(w, first, RolloutState::kAborting, RolloutEvent::kRevertsDone, "x");
  }));
  EXPECT_TRUE(run([&](pqxx::work& w) { return !repo::first_taken(w, devices); }));
  create("c", fleet, {{100, 0}});
  // A completed rollout frees them too (finish_phase of the last phase).
  const int64_t c = *db().transact([](pqxx::work& w) {
    return w.exec1("SELECT id FROM rollouts WHERE name = 'c'")[0].as<int64_t>();
  });
  EXPECT_TRUE(run([&](pqxx::work& w) { return repo::finish_phase(w, c, 0, 1, false, "done"); }));
  EXPECT_EQ(view("c").state, "completed");
  create("d", fleet, {{100, 0}});
  EXPECT_EQ(view("d").selected, 3);
}

TEST_F(RolloutRepository, TheSchemaRefusesStatesTheModuleDoesNotName) {
  const auto fleet = seed(1);
  const int64_t id = create("r", fleet, {{100, 0}});
  for (const std::string sql :
       {"UPDATE rollouts SET state = 'created' WHERE id = $1",
        "UPDATE rollout_devices SET state = 'admitted' WHERE rollout_id = $1",
        "UPDATE rollout_phases SET state = 'bogus' WHERE rollout_id = $1"}) {
    auto r = db().transact([&](pqxx::work& w) { return w.exec_params(sql, id).affected_rows(); });
    EXPECT_FALSE(r) << sql;
  }
  EXPECT_TRUE(run([&](pqxx::work& w) {
    return w.exec_params("UPDATE rollouts SET state = 'aborting' WHERE id = $1", id)
               .affected_rows() == 1;
  }));
}

}  // namespace
}  // namespace tinyfleet::testing
