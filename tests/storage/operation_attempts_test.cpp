// operations.attempts against a real PostgreSQL: a worker's start counts one and makes the
// operation running; a clean pause puts it back to pending at 0; an ended operation is
// neither started nor paused again.
#include <gtest/gtest.h>

#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/scratch_database.h"

using namespace tinyfleet::storage;
using tinyfleet::testing::ScratchDatabase;

namespace {

TEST(OperationAttempts, StartsCountAndACleanPauseResets) {
  ScratchDatabase scratch;
  auto& db = scratch.db();
  auto op = db.transact([](pqxx::work& w) {
                return operations::create(w, "compile", "model/kws/versions/1", "{}", 1);
              }).value();
  EXPECT_EQ(op.attempts, 0);
  for (int expected = 1; expected <= 2; ++expected) {
    auto started =
        db.transact([&](pqxx::work& w) { return operations::begin_attempt(w, op.id); }).value();
    ASSERT_TRUE(started);
    EXPECT_EQ(started->state, "running");
    EXPECT_EQ(started->attempts, expected);
  }
  ASSERT_TRUE(db.transact([&](pqxx::work& w) {
    operations::pause(w, op.id, "paused at shutdown");
    return Done{};
  }));
  auto paused = db.transact([&](pqxx::work& w) { return operations::get(w, op.id); }).value();
  EXPECT_EQ(paused.state, "pending");
  EXPECT_EQ(paused.attempts, 0);
  EXPECT_EQ(paused.message, "paused at shutdown");

  ASSERT_TRUE(db.transact(
      [&](pqxx::work& w) { return operations::update(w, op.id, "failed", 0, "gave up"); }));
  auto again =
      db.transact([&](pqxx::work& w) { return operations::begin_attempt(w, op.id); }).value();
  EXPECT_FALSE(again);  // ended: not picked up
  ASSERT_TRUE(db.transact([&](pqxx::work& w) {
    operations::pause(w, op.id, "late");
    return Done{};
  }));
  auto ended = db.transact([&](pqxx::work& w) { return operations::get(w, op.id); }).value();
  EXPECT_EQ(ended.state, "failed");
  EXPECT_EQ(ended.message, "gave up");
  EXPECT_FALSE(
      db.transact([&](pqxx::work& w) { return operations::begin_attempt(w, 999999); }).value());
}

}  // namespace
