// Device presence on a real PostgreSQL: a device heard again and again is written once
// per touch interval, at once after it was marked offline, and the silence sweep allows
// for the interval (never offline before `offline_after` of silence).
#include <gtest/gtest.h>
#include <sodium.h>

#include <chrono>
#include <thread>

#include "rollout_seed.h"
#include "tinyfleet/server/device_presence.h"
#include "tinyfleet/testing/scratch_database.h"
#include "tinyfleet/update/presence_message.h"

namespace tinyfleet::testing {
namespace {

using std::chrono::seconds;

class DevicePresenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    auto f = scratch_.db().transact([&](pqxx::work& w) { return seed_fleet(w, 2, false); });
    ASSERT_TRUE(f) << f.error().message;
    devices_ = f->devices;
  }
  // status and last_seen (microseconds since the epoch, 0 for NULL) of `device`.
  std::pair<std::string, int64_t> row(const std::string& device) {
    auto r = scratch_.db().transact([&](pqxx::work& w) {
      auto x = w.exec_params1(
          "SELECT status, COALESCE((EXTRACT(EPOCH FROM last_seen) * 1e6)::bigint, 0) FROM "
          "devices WHERE id = $1",
          device);
      return std::make_pair(x[0].as<std::string>(), x[1].as<int64_t>());
    });
    EXPECT_TRUE(r);
    return r ? *r : std::make_pair(std::string(), int64_t{0});
  }
  void set_last_seen_ago(const std::string& device, double s) {
    ASSERT_TRUE(scratch_.db().transact([&](pqxx::work& w) {
      w.exec_params(
          "UPDATE devices SET last_seen = now() - make_interval(secs => $2) WHERE id = $1", device,
          s);
      return true;
    }));
  }
  static std::string presence(update::Presence p) {
    update::PresenceMessage m;
    m.presence = p;
    uint8_t out[update::kPresenceBytes];
    size_t n = 0;
    EXPECT_TRUE(update::encode_presence(m, out, sizeof out, &n).ok());
    return std::string(reinterpret_cast<const char*>(out), n);
  }

  ScratchDatabase scratch_{2};
  std::vector<std::string> devices_;
};

TEST_F(DevicePresenceTest, AHeardDeviceIsWrittenOncePerIntervalAndAtOnceAfterOffline) {
  server::DevicePresence p(scratch_.db(), seconds(600));
  EXPECT_EQ(p.touch_every(), seconds(30));
  const std::string d = devices_[0];
  EXPECT_EQ(row(d).first, "provisioned");
  p.heard(d);
  p.apply();
  const auto first = row(d);
  EXPECT_EQ(first.first, "online");
  ASSERT_GT(first.second, 0);
  // Heard again within the interval: the row is not written again.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (int i = 0; i < 5; ++i) p.heard(d);
  p.apply();
  EXPECT_EQ(row(d).second, first.second);
  EXPECT_EQ(p.touches_skipped(), 5u);
  // Its own offline message is written; heard again, it is back online at once.
  p.on_presence("default", d, presence(update::Presence::kOffline));
  p.apply();
  EXPECT_EQ(row(d).first, "offline");
  p.heard(d);
  p.apply();
  const auto back = row(d);
  EXPECT_EQ(back.first, "online");
  EXPECT_GT(back.second, first.second);
  EXPECT_EQ(p.touches_skipped(), 5u);
  // Another device is not held back by the first one's interval.
  p.heard(devices_[1]);
  p.apply();
  EXPECT_EQ(row(devices_[1]).first, "online");
}

TEST_F(DevicePresenceTest, SilenceAllowsForTheIntervalBeforeMarkingOffline) {
  server::DevicePresence p(scratch_.db(), seconds(20));
  ASSERT_EQ(p.touch_every(), seconds(2));
  const std::string d = devices_[0];
  p.heard(d);
  p.apply();
  ASSERT_EQ(row(d).first, "online");
  // Written 21 s ago: it may have been heard up to 2 s after that, so not yet offline.
  set_last_seen_ago(d, 21);
  p.apply();
  EXPECT_EQ(row(d).first, "online");
  // 22.5 s: silent for at least 20.5 s.
  set_last_seen_ago(d, 22.5);
  p.apply();
  EXPECT_EQ(row(d).first, "offline");
}

}  // namespace
}  // namespace tinyfleet::testing
