// fleetd and its signing keys (real fleetd, PostgreSQL and Mosquitto): a targets key that
// expires soon is warned about and exported as a metric; an expired one signs nothing, so
// a rollout admits no device and says why; a root key in keys.dir is warned about.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "fleetd_fixture.h"
#include "rollout_seed.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/update/update_keys.h"
#include "tinyfleet/v1/rollouts.grpc.pb.h"

namespace tinyfleet::testing {
namespace {

namespace fs = std::filesystem;

uint64_t now_unix() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// fleetd over keys made `made_days_ago` days ago and valid `valid_days` days; keys.dir
// holds only what fleetctl keys init leaves there (no root.key) unless `root_online`.
class FleetdKeys : public FleetdUpdatesTest {
 protected:
  virtual int made_days_ago() const = 0;
  virtual uint32_t valid_days() const = 0;
  virtual bool root_online() const { return false; }
  std::map<std::string, std::string> fleetd_settings() override {
    auto s = update_settings();
    fs::remove_all(keys_);
    const fs::path root = keys_.string() + "-root";
    fs::remove_all(root);
    const auto made = now_unix() - uint64_t(made_days_ago()) * 86400;
    EXPECT_TRUE(update::init_keys(root_online() ? keys_.string() : root.string(), keys_.string(),
                                  made, valid_days()));
    EXPECT_EQ(fs::exists(keys_ / "root.key"), root_online());
    EXPECT_TRUE(fs::exists(keys_ / "root.pub"));
    s["keys.warn_days"] = "14";
    return s;
  }
  void TearDown() override {
    fs::remove_all(keys_.string() + "-root");
    FleetdUpdatesTest::TearDown();
  }
  bool log_has(const std::string& text) {
    for (int i = 0; i < 100; ++i) {
      if (fleetd_->log().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
};

class ExpiringKey : public FleetdKeys {
  int made_days_ago() const override { return 0; }
  uint32_t valid_days() const override { return 5; }
  bool root_online() const override { return true; }
};

TEST_F(ExpiringKey, IsWarnedAboutAndExportedAsAMetric) {
  EXPECT_TRUE(log_has("\"keys.expiring\"")) << fleetd_->log().substr(0, 4000);
  EXPECT_TRUE(log_has("\"days_left\":5")) << fleetd_->log().substr(0, 4000);
  EXPECT_TRUE(log_has("\"keys.root_online\"")) << "root.key in keys.dir must be warned about";
  const auto key = update::load_targets_key(keys_.string());
  ASSERT_TRUE(key);
  const std::string text = fleetd_->scrape_metrics();
  const std::string name = "\ntinyfleet_targets_key_expiry_timestamp_seconds ";
  const auto at = text.find(name);
  ASSERT_NE(at, std::string::npos) << text.substr(0, 2000);
  const double value = std::stod(text.substr(at + name.size()));  // printed as a double
  EXPECT_EQ(static_cast<uint64_t>(value), key->expires_at);
}

class ExpiredKey : public FleetdKeys {
  int made_days_ago() const override { return 40; }
  uint32_t valid_days() const override { return 30; }
};

TEST_F(ExpiredKey, SignsNothingAndTheRolloutSaysWhy) {
  EXPECT_TRUE(log_has("\"keys.expired\"")) << fleetd_->log().substr(0, 4000);
  EXPECT_FALSE(log_has("\"keys.root_online\""));
  auto f = scratch_.db().transact([](pqxx::work& w) { return seed_fleet(w, 3, false); });
  ASSERT_TRUE(f) << f.error().message;
  auto stub = v1::Rollouts::NewStub(fleetd_->channel());
  v1::CreateRolloutRequest req;
  req.set_name("with-expired-key");
  req.set_model("digits");
  req.set_version(1);
  req.mutable_selector()->add_tags("t");
  v1::Rollout out;
  auto s = stub->CreateRollout(context_with_token(admin_).get(), req, &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::Rollout r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    v1::RolloutRef ref;
    ref.set_name("with-expired-key");
    ASSERT_TRUE(stub->GetRollout(context_with_token(admin_).get(), ref, &r).ok());
    if (r.reason().find("targets key expired") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(r.reason().find("targets key expired"), std::string::npos) << r.reason();
  EXPECT_EQ(r.state(), "running");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // ticks pass; none admitted
  auto offered = scratch_.db().transact([](pqxx::work& w) {
    return w.exec("SELECT count(*) FROM rollout_devices WHERE state <> 'pending'")[0][0]
        .as<int64_t>();
  });
  ASSERT_TRUE(offered);
  EXPECT_EQ(*offered, 0) << "no device may be offered a release signed by an expired key";
}

}  // namespace
}  // namespace tinyfleet::testing
