// fleetd's API limits through real gRPC, PostgreSQL and Mosquitto.
// - A bearer token (known or not) gets api.rate_burst calls at once, then
//   api.rate_per_second; beyond, RESOURCE_EXHAUSTED, and other tokens are not affected.
// - Calls that hold every API database connection (here: blocked behind a lock on
//   api_tokens) neither stop the rollout engine, which has connections of its own, nor
//   hang other calls: those are UNAVAILABLE after database.acquire_timeout_ms.
#include <gtest/gtest.h>
#include <sodium.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "fleetd_fixture.h"
#include "seeded_rollout.h"
#include "tinyfleet/v1/rollouts.grpc.pb.h"

namespace tinyfleet::testing {
namespace {

using Clock = std::chrono::steady_clock;

grpc::Status list(v1::Rollouts::Stub& stub, const std::string& token,
                  std::chrono::seconds deadline = std::chrono::seconds(20)) {
  auto ctx = context_with_token(token);
  ctx->set_deadline(std::chrono::system_clock::now() + deadline);
  v1::ListRolloutsRequest req;
  v1::ListRolloutsResponse out;
  return stub.ListRollouts(ctx.get(), req, &out);
}

class RateLimit : public FleetdTest {
 protected:
  std::map<std::string, std::string> fleetd_settings() override {
    return {{"api.rate_per_second", "2"}, {"api.rate_burst", "10"}};
  }
};

TEST_F(RateLimit, ATokenBeyondItsRateIsRefusedOthersAreNot) {
  auto stub = v1::Rollouts::NewStub(fleetd_->channel());
  const auto viewer = make_token("viewer", v1::ROLE_VIEWER);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(list(*stub, viewer).ok()) << i;
  auto s = list(*stub, viewer);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find("too many calls with this token"), std::string::npos);
  // The admin's token has its own bucket.
  EXPECT_TRUE(list(*stub, admin_).ok());
  // An unknown token is limited too (before any database work).
  int unauthenticated = 0, exhausted = 0;
  for (int i = 0; i < 20; ++i) {
    const auto code = list(*stub, "tf_not_a_token").error_code();
    unauthenticated += code == grpc::StatusCode::UNAUTHENTICATED;
    exhausted += code == grpc::StatusCode::RESOURCE_EXHAUSTED;
  }
  EXPECT_LE(unauthenticated, 12);
  EXPECT_GE(exhausted, 8);
  // Two a second: after a second the viewer may call again.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_TRUE(list(*stub, viewer).ok());
}

class PoolStarvation : public FleetdUpdatesTest {
 protected:
  std::map<std::string, std::string> fleetd_settings() override {
    auto s = update_settings();
    s["database.pool"] = "2";
    s["database.acquire_timeout_ms"] = "1000";
    return s;
  }
  // Sessions of fleetd waiting for a lock.
  int waiting_on_locks(pqxx::connection& c) {
    pqxx::nontransaction n(c);
    return n
        .exec1(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
            "wait_event_type = 'Lock'")[0]
        .as<int>();
  }
  std::string state_of(const std::string& name) {
    auto s = scratch_.db().transact([&](pqxx::work& w) {
      return w.exec_params1("SELECT state FROM rollouts WHERE name = $1", name)[0]
          .as<std::string>();
    });
    return s ? *s : "?";
  }
};

TEST_F(PoolStarvation, BlockedCallsStarveNeitherTheEngineNorOtherCalls) {
  auto stub = v1::Rollouts::NewStub(fleetd_->channel());
  // Every token lookup blocks until the lock goes: calls with (unknown) tokens hold the
  // two API connections, and the next ones wait for a connection.
  pqxx::connection locker(scratch_.uri());
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE api_tokens IN ACCESS EXCLUSIVE MODE");
  constexpr int kCalls = 6;
  std::vector<grpc::StatusCode> codes(kCalls, grpc::StatusCode::OK);
  std::vector<std::thread> calls;
  for (int i = 0; i < kCalls; ++i) {
    calls.emplace_back(
        [&, i] { codes[i] = list(*stub, "tf_flood_" + std::to_string(i)).error_code(); });
  }
  // Whatever fails below, the lock goes and the calls end before the test does.
  struct Release {
    pqxx::work& lock;
    std::vector<std::thread>& calls;
    bool done = false;
    void operator()() {
      if (done) return;
      done = true;
      lock.abort();
      for (auto& t : calls) t.join();
    }
    ~Release() { (*this)(); }
  } release{lock, calls};
  pqxx::connection watcher(scratch_.uri());
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (waiting_on_locks(watcher) < 2 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(waiting_on_locks(watcher), 2) << "the calls never held both API connections";

  // A rollout of four devices that run the target already: the engine completes it.
  auto id = scratch_.db().transact([](pqxx::work& w) { return seed_rollout(w, "starved", 4); });
  ASSERT_TRUE(id) << id.error().message;
  const auto until = Clock::now() + std::chrono::seconds(15);
  while (state_of("starved") != "completed" && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(state_of("starved"), "completed")
      << "the engine did not move while the API's connections were held\n"
      << fleetd_->log().substr(0, 6000);

  // A call now (with a good token) finds no free connection: UNAVAILABLE after the
  // acquisition timeout, not a wait without end.
  const auto t0 = Clock::now();
  auto s = list(*stub, admin_, std::chrono::seconds(10));
  const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_NE(s.error_message().find("no database connection free within 1000 ms"), std::string::npos)
      << s.error_message();
  EXPECT_LT(waited, 5.0);

  release();
  int unavailable = 0;
  for (const auto code : codes) {
    EXPECT_TRUE(code == grpc::StatusCode::UNAUTHENTICATED || code == grpc::StatusCode::UNAVAILABLE)
        << code;
    unavailable += code == grpc::StatusCode::UNAVAILABLE;
  }
  EXPECT_GE(unavailable, kCalls - 2);
  EXPECT_TRUE(list(*stub, admin_).ok());
}

}  // namespace
}  // namespace tinyfleet::testing
