#include "console_stack.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/v1/rollouts.grpc.pb.h"

namespace tinyfleet::testing {

namespace {

// The compile report and typed outputs the compiler stores, in the same shape.
storage::NewArtifact reported(const SeededFleet& f) {
  storage::NewArtifact a;
  a.version_id = f.version_id;
  a.device_class = kSeedClass;
  a.artifact_sha256 = f.artifact;
  a.report_json = R"({"device_class":"cortex-m4-256k","operators":5,"macs":120000,
    "weight_bytes":9000,"artifact_bytes":12000,"arena_bytes":6144,"naive_arena_bytes":10240,
    "latency_ms":3.25,"energy_mj":0.41,"cycles":260000,"compile_ms":12,
    "validation":{"samples":100,"float_top1":0.97,"int8_top1":0.96,"drop":0.01,
    "worst_layer":"conv2","worst_layer_sqnr_db":31.5}})";
  storage::ArtifactOutputs o;
  o.self_tests.push_back({std::string(4, '\1'), std::string(10, '\2')});
  o.class_histogram.assign(10, 0.1f);
  o.mean_top1_confidence = 0.9f;
  o.channel_mean = {0.5f};
  o.channel_std = {0.2f};
  o.modelled_cycles = 260000;
  o.arena_bytes = 6144;
  o.buffers = {{"input", 0, 1024, 0, 1},
               {"conv1", 1024, 4096, 1, 2},
               {"conv2", 0, 1024, 2, 3},
               {"dense", 1024, 512, 3, 4},
               {"output", 0, 64, 4, 4}};
  a.outputs = o;
  return a;
}

grpc::Status create(v1::Rollouts::Stub& stub, const std::string& admin, const std::string& name,
                    const std::string& tag, std::vector<std::pair<int, int>> phases,
                    const std::string& gates) {
  v1::CreateRolloutRequest req;
  req.set_name(name);
  req.set_model("digits");
  req.set_version(1);
  req.mutable_selector()->add_tags(tag);
  for (const auto& [percent, bake] : phases) {
    auto* p = req.add_phases();
    p->set_percent(percent);
    p->set_bake_seconds(bake);
  }
  req.set_gates(gates);
  req.set_on_gate_failure("rollback");
  v1::Rollout out;
  return stub.CreateRollout(context_with_token(admin).get(), req, &out);
}

}  // namespace

std::string ConsoleStack::rollout_state(const std::string& rollout) {
  auto r = scratch_.db().transact([&](pqxx::work& w) {
    const auto rows = w.exec_params("SELECT state FROM rollouts WHERE name = $1", rollout);
    return rows.empty() ? std::string() : rows[0][0].as<std::string>();
  });
  return r ? *r : "";
}

bool ConsoleStack::wait_for_state(const std::string& rollout, const std::string& state) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (rollout_state(rollout) == state) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

void ConsoleStack::SetUp() {
  FleetdTest::SetUp();
  ASSERT_GT(fleetd_->console_port(), 0) << fleetd_->log();
  auto f = scratch_.db().transact([](pqxx::work& w) {
    auto seeded = seed_fleet(w, 4, true, "canary");
    storage::artifacts::store(w, reported(seeded));
    for (int i = 0; i < 2; ++i) {
      const std::string id = "dev-steady-" + std::to_string(i);
      storage::devices::create(w, {id, "default", kSeedClass, {"steady"}, "hash"});
      storage::devices::set_current_artifact(w, id, seeded.artifact);
    }
    return seeded;
  });
  ASSERT_TRUE(f) << f.error().message;
  fleet_ = *f;
  viewer_ = make_token("console-viewer", v1::ROLE_VIEWER);
  operator_ = make_token("console-operator", v1::ROLE_OPERATOR);

  auto stub = v1::Rollouts::NewStub(fleetd_->channel());
  // The canary (phase 0, half the devices) bakes 2 s; its devices report a poor accuracy.
  auto s = create(*stub, admin_, "canary-bad", "canary", {{50, 2}, {100, 0}}, "accuracy >= 0.8");
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(scratch_.db().transact([&](pqxx::work& w) {
    for (const auto& d : fleet_.devices) add_telemetry(w, d, fleet_.artifact, 0.55);
    return 0;
  }));
  ASSERT_TRUE(wait_for_state("canary-bad", "rolled_back")) << rollout_state("canary-bad") << "\n"
                                                           << fleetd_->log().substr(0, 6000);
  s = create(*stub, admin_, "steady", "steady", {{100, 3600}}, "");
  ASSERT_TRUE(s.ok()) << s.error_message();
}

}  // namespace tinyfleet::testing
