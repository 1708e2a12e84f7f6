// What a rollout never offers (real fleetd, PostgreSQL and Mosquitto): an artifact whose
// stored bytes were corrupted in PostgreSQL (fleetd re-hashes the blob before signing,
// refuses it, logs offer.blob_corrupt) and anything to a deprovisioned device.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "fleetd_fixture.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/v1/rollouts.grpc.pb.h"

namespace tinyfleet::testing {
namespace {

const char* kClass = "cortex-m4-256k";
const char* kSpec =
    R"({"ram_bytes":262144,"flash_bytes":1048576,"clock_hz":80000000,"runtime_ram_bytes":4096,
        "runtime_flash_bytes":24576})";

class RolloutRefusals : public FleetdUpdatesTest {
 protected:
  // A compiled version of "digits" with its outputs and `devices` devices tagged "t"
  // (none running it yet); returns the artifact's sha256.
  std::string seed(int devices) {
    std::string sha;
    EXPECT_TRUE(scratch_.db().transact([&](pqxx::work& w) {
      using namespace storage;
      device_classes::upsert(w, {kClass, kSpec});
      models::create(w, "digits", "");
      const auto v =
          models::create_version(w, {"digits", 0, PgBlobStore::put(w, "onnx"), {}, {}, {}});
      NewArtifact a;
      a.version_id = v.id;
      a.device_class = kClass;
      a.artifact_sha256 = sha = PgBlobStore::put(w, std::string(3000, 'A'));
      ArtifactOutputs o;
      o.self_tests = {{std::string(4, '\1'), std::string(2, '\2')}};
      o.modelled_cycles = 1000;
      o.arena_bytes = 64;
      a.outputs = o;
      artifacts::store(w, a);
      for (int i = 0; i < devices; ++i) {
        devices::create(w, {"blob-dev-" + std::to_string(i), "default", kClass, {"t"}, "hash"});
      }
      return Done{};
    }));
    return sha;
  }
  grpc::Status create_rollout(const std::string& name) {
    auto rollouts = v1::Rollouts::NewStub(fleetd_->channel());
    v1::CreateRolloutRequest req;
    req.set_name(name);
    req.set_model("digits");
    req.set_version(1);
    req.mutable_selector()->add_tags("t");
    auto* phase = req.add_phases();
    phase->set_percent(100);
    phase->set_bake_seconds(0);
    v1::Rollout r;
    return rollouts->CreateRollout(context_with_token(admin_).get(), req, &r);
  }
};

TEST_F(RolloutRefusals, ARolloutOfACorruptedArtifactOffersNothing) {
  const std::string sha = seed(3);
  // The artifact's bytes change behind fleetd's back.
  ASSERT_TRUE(scratch_.db().transact([&](pqxx::work& w) {
    w.exec_params("UPDATE blobs SET data = set_byte(data, 10, 66) WHERE sha256 = $1", sha);
    return storage::Done{};
  }));
  auto s = create_rollout("corrupt");
  ASSERT_TRUE(s.ok()) << s.error_message();

  // Each device is refused its offer, naming the corrupt blob; none is ever offered.
  int64_t failed = 0;
  for (int i = 0; i < 300 && failed < 3; ++i) {
    failed = scratch_.db()
                 .transact([&](pqxx::work& w) {
                   return w
                       .exec_params1(
                           "SELECT count(*) FROM rollout_devices WHERE state = 'failed' "
                           "AND error LIKE '%corrupt%' AND error LIKE '%' || $1 || '%'",
                           sha)[0]
                       .as<int64_t>();
                 })
                 .value();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(failed, 3) << fleetd_->log().substr(0, 6000);
  auto offered = scratch_.db().transact([](pqxx::work& w) {
    return w.exec1("SELECT count(*) FROM rollout_devices WHERE release_seq IS NOT NULL")[0]
        .as<int64_t>();
  });
  ASSERT_TRUE(offered);
  EXPECT_EQ(*offered, 0);
  EXPECT_NE(fleetd_->log().find("offer.blob_corrupt"), std::string::npos);
}

TEST_F(RolloutRefusals, DeprovisionedDevicesAreNotSelected) {
  seed(3);
  ASSERT_TRUE(scratch_.db().transact([](pqxx::work& w) {
    storage::devices::deprovision(w, "blob-dev-1");
    return storage::Done{};
  }));
  auto s = create_rollout("without-gone");
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto enrolled = scratch_.db().transact([](pqxx::work& w) {
    std::vector<std::string> ids;
    for (const auto& r : w.exec("SELECT device_id FROM rollout_devices ORDER BY device_id")) {
      ids.push_back(r[0].as<std::string>());
    }
    return ids;
  });
  ASSERT_TRUE(enrolled);
  EXPECT_EQ(*enrolled, (std::vector<std::string>{"blob-dev-0", "blob-dev-2"}));
}

}  // namespace
}  // namespace tinyfleet::testing
