#include "console_stack.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

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

// One look of the canary-control history (look 0 .. kControlLooks-1): the clauses in the
// shape the engine's statistical gates store.
nlohmann::json control_report(int look, int looks) {
  const double canary = 0.94 - 0.13 * look / (looks - 1), control = 0.95;
  const double drop = control - canary, half = 0.06 - 0.005 * look;
  const bool last = look == looks - 1;
  return nlohmann::json::array(
      {{{"metric", "accuracy_drop"},
        {"op", "<="},
        {"threshold", 0.05},
        {"value", drop},
        {"lo", drop - half},
        {"hi", drop + half},
        {"known", true},
        {"passed", false},
        {"verdict", last ? "fail" : "wait"},
        {"timed_out", false},
        {"canary", {{"value", canary}, {"devices", 12}}},
        {"reference", {{"group", "control"}, {"value", control}, {"devices", 11}}}},
       {{"metric", "failure_rate"},
        {"op", "<="},
        {"threshold", 0.05},
        {"value", 0.01},
        {"lo", 0.0},
        {"hi", 0.02},
        {"known", true},
        {"passed", true},
        {"verdict", "pass"},
        {"timed_out", false},
        {"canary", {{"value", 0.01}, {"devices", 12}}}}});
}

}  // namespace

void ConsoleStack::insert_canary_control_history() {
  ASSERT_TRUE(scratch_.db().transact([](pqxx::work& w) {
    const auto id =
        w.exec1("SELECT id FROM rollouts WHERE name = 'canary-control'")[0].as<int64_t>();
    // Its devices never update (nothing answers their offers), so the engine records no
    // history of its own for this rollout: these rows are all there is.
    std::string report;
    for (int look = 0; look < kControlLooks; ++look) {
      report = control_report(look, kControlLooks).dump();
      w.exec_params(
          "INSERT INTO rollout_gate_history (rollout_id, phase, stage, at, report) VALUES ($1, "
          "0, 'decision', now() - make_interval(mins => $2), $3::jsonb)",
          id, kControlLooks - look, report);
    }
    w.exec_params("UPDATE rollouts SET gate_report = $2::jsonb WHERE id = $1", id, report);
    return 0;
  }));
}

std::string ConsoleStack::rollout_state(const std::string& rollout) {
  auto r = scratch_.db().transact([&](pqxx::work& w) {
    const auto rows = w.exec_params("SELECT state FROM rollouts WHERE name = $1", rollout);
    return rows.empty() ? std::string() : rows[0][0].as<std::string>();
  });
  return r ? *r : "";
}

bool ConsoleStack::wait_for_canary_updated(const std::string& rollout, int devices) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    auto n = scratch_.db().transact([&](pqxx::work& w) {
      return w
          .exec_params1(
              "SELECT count(*) FROM rollout_devices rd JOIN rollouts r ON r.id = "
              "rd.rollout_id WHERE r.name = $1 AND rd.phase = 0 AND rd.state = "
              "'updated' AND rd.updated_at_device < now()",
              rollout)[0]
          .as<int>();
    });
    if (n && *n >= devices) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
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
    for (const char* tag : {"steady", "control"}) {
      for (int i = 0; i < 2; ++i) {
        const std::string id = "dev-" + std::string(tag) + "-" + std::to_string(i);
        storage::devices::create(w, {id, "default", kSeedClass, {tag}, "hash"});
        storage::devices::set_current_artifact(w, id, seeded.artifact);
      }
    }
    return seeded;
  });
  ASSERT_TRUE(f) << f.error().message;
  fleet_ = *f;
  viewer_ = make_token("console-viewer", v1::ROLE_VIEWER);
  operator_ = make_token("console-operator", v1::ROLE_OPERATOR);

  auto stub = v1::Rollouts::NewStub(fleetd_->channel());
  // The canary (phase 0, half the devices) bakes 3 s; its devices report a poor accuracy.
  auto s = create(*stub, admin_, "canary-bad", "canary", {{50, 3}, {100, 0}}, "accuracy >= 0.8");
  ASSERT_TRUE(s.ok()) << s.error_message();
  // The gate counts a device's windows from when the engine marked it updated (these
  // already run the target: at admission); windows stored before that would not count,
  // and a loaded machine once admitted them after the test had stored its windows.
  ASSERT_TRUE(wait_for_canary_updated("canary-bad", 2));
  ASSERT_TRUE(scratch_.db().transact([&](pqxx::work& w) {
    for (const auto& d : fleet_.devices) add_telemetry(w, d, fleet_.artifact, 0.55);
    return 0;
  }));
  ASSERT_TRUE(wait_for_state("canary-bad", "rolled_back")) << rollout_state("canary-bad") << "\n"
                                                           << fleetd_->log().substr(0, 6000);
  s = create(*stub, admin_, "steady", "steady", {{100, 3600}}, "");
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = create(*stub, admin_, "canary-control", "control", {{50, 3600}, {100, 0}},
             "accuracy_drop <= 0.05 && failure_rate <= 0.05");
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::RolloutRef ref;
  ref.set_name("canary-control");
  v1::Rollout paused;
  s = stub->PauseRollout(context_with_token(admin_).get(), ref, &paused);
  ASSERT_TRUE(s.ok()) << s.error_message();
  insert_canary_control_history();
}

}  // namespace tinyfleet::testing
