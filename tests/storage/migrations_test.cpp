#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "tinyfleet/storage/migrations.h"
#include "tinyfleet/testing/scratch_database.h"

using namespace tinyfleet::storage;
using tinyfleet::testing::ScratchDatabase;

namespace {
int64_t count(Database& db, const std::string& sql) {
  return db.transact([&](pqxx::work& w) { return w.exec(sql)[0][0].as<int64_t>(); }).value();
}

bool table_exists(Database& db, const std::string& table) {
  return count(db, "SELECT count(*) FROM pg_tables WHERE tablename = '" + table + "'") == 1;
}
}  // namespace

TEST(Migrations, ApplyToEmptyDatabaseThenAreANoOp) {
  ScratchDatabase scratch(2, /*migrate=*/false);
  auto first = migrate(scratch.db());
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(*first, static_cast<int>(builtin_migrations().size()));
  EXPECT_TRUE(table_exists(scratch.db(), "model_versions"));
  EXPECT_TRUE(table_exists(scratch.db(), "telemetry"));

  auto second = migrate(scratch.db());
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(*second, 0);
  EXPECT_EQ(count(scratch.db(), "SELECT count(*) FROM schema_migrations"),
            static_cast<int64_t>(builtin_migrations().size()));
}

TEST(Migrations, AFailingMigrationLeavesTheSchemaAsItWas) {
  ScratchDatabase scratch(2, /*migrate=*/false);
  auto migrations = builtin_migrations();
  migrations.push_back({900, "half_done",
                        "CREATE TABLE half_done (x int); INSERT INTO half_done VALUES (1);"
                        "ALTER TABLE no_such_table ADD COLUMN y int;"});
  auto result = migrate(scratch.db(), migrations);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("migration 900 'half_done' failed"), std::string::npos)
      << result.error().message;
  EXPECT_FALSE(table_exists(scratch.db(), "half_done"));
  // The migrations before it are applied and recorded; 900 is not.
  EXPECT_TRUE(table_exists(scratch.db(), "models"));
  EXPECT_EQ(count(scratch.db(), "SELECT count(*) FROM schema_migrations WHERE version = 900"), 0);
}

TEST(Migrations, ConcurrentRunnersApplyEachMigrationOnce) {
  ScratchDatabase scratch(4, /*migrate=*/false);
  std::vector<std::thread> runners;
  std::atomic<int> applied{0};
  for (int i = 0; i < 3; ++i) {
    runners.emplace_back([&] {
      auto r = migrate(scratch.db());
      if (r) applied += *r;
    });
  }
  for (auto& t : runners) t.join();
  EXPECT_EQ(applied.load(), static_cast<int>(builtin_migrations().size()));
}
