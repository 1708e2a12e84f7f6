// Retained offers on a Mosquitto of the test's own (real fleetd and PostgreSQL): the broker
// crashes (SIGKILL) and comes back empty (no persistence), and fleetd re-publishes every
// outstanding offer from the database once its publisher reconnects; a rollout aborted
// before its devices fetched their offers withdraws them. Offers leave through the outbox
// (device_offers.published_at): unpublished while the broker is away, published once it
// acknowledged them. A broker configured as the stack's (persistence, saved every second)
// keeps its retained offers through a SIGKILL with no fleetd to re-publish them.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "fleetd_fixture.h"
#include "rollout_seed.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/private_broker.h"
#include "tinyfleet/v1/rollouts.grpc.pb.h"

namespace tinyfleet::testing {
namespace {

class BrokerRestart : public FleetdUpdatesTest {
 protected:
  explicit BrokerRestart(bool persistence = false) : broker_(persistence) {}
  std::map<std::string, std::string> fleetd_settings() override {
    broker_.start();
    auto s = update_settings();
    s["mqtt.host"] = "127.0.0.1";
    s["mqtt.port"] = std::to_string(broker_.port());
    s.erase("mqtt.ca_file");  // the private broker listens plaintext
    return s;
  }
  // The size of `device`'s retained offer, read as fleetd's account would (0: none within
  // `wait_seconds`).
  long retained_offer(const std::string& device, int wait_seconds = 10) {
    const auto r = run_command("mosquitto_sub -h 127.0.0.1 -p " + std::to_string(broker_.port()) +
                               " -u '" + require_env("TINYFLEET_MQTT_SERVER_USER") + "' -P '" +
                               require_env("TINYFLEET_MQTT_SERVER_PASSWORD") + "' -i probe-" +
                               device + " -q 1 -C 1 -W " + std::to_string(wait_seconds) +
                               " -t tinyfleet/v1/default/" + device + "/offer 2>/dev/null | wc -c");
    return r.exit == 0 ? std::strtol(r.out.c_str(), nullptr, 10) : 0;
  }
  // Devices without a model, and the artifact's stored compile outputs (so offers build).
  storage::Expected<SeededFleet> seed() {
    return scratch_.db().transact([](pqxx::work& w) {
      auto seeded = seed_fleet(w, 2, false);
      // The class as the catalog has it (the offer builder reads its delta budget).
      storage::device_classes::upsert(
          w, {kSeedClass,
              R"({"ram_bytes":262144,"flash_bytes":1048576,"clock_hz":80000000,"simd":["dsp"],
                  "runtime_flash_bytes":24576,"runtime_ram_bytes":4096,"active_mw":12.0,
                  "idle_mw":0.3,"cycles_per_mac":{"conv":1.2,"depthwise":2.0,
                  "fully_connected":1.1,"other":4.0}})"});
      storage::NewArtifact a;  // what the compiler stores with an artifact, for the offer
      a.version_id = seeded.version_id;
      a.device_class = kSeedClass;
      a.artifact_sha256 = seeded.artifact;
      storage::ArtifactOutputs o;
      o.self_tests.push_back({std::string(4, '\1'), std::string(10, '\2')});
      o.class_histogram.assign(10, 0.1f);
      o.channel_mean = {0.5f};
      o.channel_std = {0.2f};
      o.modelled_cycles = 1000;
      a.outputs = o;
      storage::artifacts::store(w, a);
      return seeded;
    });
  }
  grpc::Status create(const std::string& name) {
    auto stub = v1::Rollouts::NewStub(fleetd_->channel());
    v1::CreateRolloutRequest req;
    req.set_name(name);
    req.set_model("digits");
    req.set_version(1);
    req.mutable_selector()->add_tags("t");
    v1::Rollout out;
    return stub->CreateRollout(context_with_token(admin_).get(), req, &out);
  }
  // device_offers rows the broker has not acknowledged yet.
  int64_t unpublished() {
    auto n = scratch_.db().transact([](pqxx::work& w) {
      return w.exec1("SELECT count(*) FROM device_offers WHERE published_at IS NULL")[0]
          .as<int64_t>();
    });
    return n ? *n : -1;
  }
  int64_t offers() { return count_rows("device_offers"); }
  PrivateBroker broker_;
};

// The stack's broker: persistence, saved every second (deploy/local/stack.sh).
class PersistentBroker : public BrokerRestart {
 protected:
  PersistentBroker() : BrokerRestart(/*persistence=*/true) {}
};

TEST_F(BrokerRestart, OutstandingOffersAreRepublishedAfterTheBrokerLostThem) {
  auto f = seed();
  ASSERT_TRUE(f) << f.error().message;
  auto s = create("through-a-crash");
  ASSERT_TRUE(s.ok()) << s.error_message();

  // Both devices are offered (nobody answers, so the offers stay outstanding).
  for (const auto& d : f->devices) {
    ASSERT_GT(retained_offer(d), 100) << d << ": " << *scratch_.db().transact([&](pqxx::work& w) {
      return w
          .exec_params1("SELECT state || ' ' || error FROM rollout_devices WHERE device_id = $1",
                        d)[0]
          .as<std::string>();
    });
  }
  broker_.kill();
  broker_.start();  // empty: the retained offers are gone
  for (const auto& d : f->devices) {
    EXPECT_GT(retained_offer(d), 100)
        << d << ": the offer was not re-published after the broker came back\n"
        << fleetd_->log().substr(0, 8000);
  }
  EXPECT_NE(fleetd_->log().find("\"why\":\"reconnect\""), std::string::npos);
}

// A rollout aborted before its devices (which had no model) fetched their offers: the
// offers are withdrawn (the retained messages cleared), so none installs the aborted
// release when it comes back.
TEST_F(BrokerRestart, AbortWithdrawsTheOffersOfDevicesWithoutAModel) {
  auto f = seed();
  ASSERT_TRUE(f) << f.error().message;
  ASSERT_TRUE(create("to-abort").ok());
  for (const auto& d : f->devices) ASSERT_GT(retained_offer(d), 100) << d;
  auto stub = v1::Rollouts::NewStub(fleetd_->channel());
  v1::RolloutRef ref;
  ref.set_name("to-abort");
  v1::Rollout r;
  auto s = stub->AbortRollout(context_with_token(admin_).get(), ref, &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  for (int i = 0; i < 100 && r.state() != "aborted"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(stub->GetRollout(context_with_token(admin_).get(), ref, &r).ok());
  }
  ASSERT_EQ(r.state(), "aborted") << r.reason();
  for (const auto& d : f->devices) {
    EXPECT_EQ(retained_offer(d, 2), 0) << d << ": the aborted release is still offered";
  }
}

// The broker is down when the rollout starts: the offers are stored (the outbox) but not
// published; once the broker is back they are published, acknowledged and leave it.
TEST_F(BrokerRestart, OffersStayInTheOutboxUntilTheBrokerAcknowledgesThem) {
  auto f = seed();
  ASSERT_TRUE(f) << f.error().message;
  broker_.stop();
  ASSERT_TRUE(create("broker-away").ok());
  for (int i = 0; i < 100 && offers() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(offers(), 2) << fleetd_->log().substr(0, 8000);
  std::this_thread::sleep_for(std::chrono::seconds(1));  // retries that cannot succeed
  EXPECT_EQ(unpublished(), 2) << "an offer the broker never acknowledged counts as published";
  broker_.start();
  for (int i = 0; i < 150 && unpublished() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(unpublished(), 0) << fleetd_->log().substr(0, 8000);
  for (const auto& d : f->devices) EXPECT_GT(retained_offer(d), 100) << d;
}

// Persistence as the stack configures it: fleetd is stopped (nobody re-publishes), the
// broker is killed (SIGKILL) after its next save and restarted: the offers are retained.
TEST_F(PersistentBroker, RetainedOffersSurviveASigkillWithoutFleetd) {
  auto f = seed();
  ASSERT_TRUE(f) << f.error().message;
  ASSERT_TRUE(create("persisted").ok());
  for (const auto& d : f->devices) ASSERT_GT(retained_offer(d), 100) << d;
  EXPECT_EQ(fleetd_->terminate(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // autosave_interval 1
  broker_.kill();
  broker_.start();
  for (const auto& d : f->devices) {
    EXPECT_GT(retained_offer(d), 100) << d << ": the broker lost a retained offer in a crash";
  }
}

}  // namespace
}  // namespace tinyfleet::testing
