// The console's HTTP/JSON API on a real fleetd (PostgreSQL, Mosquitto): tokens and roles
// as gRPC has them, the documents the pages draw, and the operator actions.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "console_stack.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/v1/rollouts.grpc.pb.h"

namespace tinyfleet::testing {
namespace {

using nlohmann::json;

class ConsoleApi : public ConsoleStack {
 protected:
  httplib::Result call(const std::string& method, const std::string& path, const std::string& token,
                       const std::string& body = "") {
    httplib::Client client("127.0.0.1", fleetd_->console_port());
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return method == "GET" ? client.Get(path, headers)
                           : client.Post(path, headers, body, "application/json");
  }
  json body(const httplib::Result& r) { return json::parse(r->body, nullptr, false); }
};

TEST_F(ConsoleApi, RefusesCallsWithoutAValidToken) {
  auto r = call("GET", "/api/v1/fleet", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(body(r).value("error", "").find("needs a token"), std::string::npos) << r->body;
  r = call("GET", "/api/v1/rollouts", "tf_not_a_token");
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(body(r).value("error", ""), "the token is unknown or revoked");
  EXPECT_NE(fleetd_->log().find("\"method\":\"console.rollouts\""), std::string::npos);
}

TEST_F(ConsoleApi, ShowsTheFleetTheRolloutsAndTheCompileReport) {
  auto r = call("GET", "/api/v1/fleet", viewer_);
  ASSERT_EQ(r->status, 200) << r->body;
  auto f = body(r);
  EXPECT_EQ(f["total"], 8);
  EXPECT_EQ(f["by_class"][kSeedClass], 8);
  EXPECT_EQ(f["by_model"]["digits v1"], 8);
  ASSERT_EQ(f["devices"].size(), 8u);
  EXPECT_EQ(f["devices"][0]["id"], "dev-1000");
  EXPECT_NE(f["devices"][0].at("last_telemetry"), "");  // the canary's devices reported
  EXPECT_EQ(f["devices"][7]["id"], "dev-steady-1");
  EXPECT_EQ(f["devices"][7].at("last_telemetry"), "");

  r = call("GET", "/api/v1/rollouts/canary-bad", viewer_);
  ASSERT_EQ(r->status, 200) << r->body;
  auto bad = body(r);
  EXPECT_EQ(bad["state"], "rolled_back");
  EXPECT_EQ(bad["phases"][0]["state"], "failed");
  EXPECT_NE(bad["reason"].get<std::string>().find("accuracy"), std::string::npos) << bad.dump();

  r = call("GET", "/api/v1/rollouts", viewer_);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(body(r).size(), 3u);
  EXPECT_EQ(call("GET", "/api/v1/rollouts/nope", viewer_)->status, 404);

  r = call("GET", "/api/v1/models/digits/versions/1", viewer_);
  ASSERT_EQ(r->status, 200) << r->body;
  auto v = body(r);
  ASSERT_EQ(v["artifacts"].size(), 1u);
  EXPECT_EQ(v["artifacts"][0]["report"]["latency_ms"], 3.25);
  EXPECT_EQ(v["artifacts"][0]["memory_plan"]["buffers"].size(), 5u);
  EXPECT_EQ(v["artifacts"][0]["memory_plan"]["buffers"][1]["tensor"], "conv1");
  EXPECT_EQ(call("GET", "/api/v1/models/digits/versions/2", viewer_)->status, 404);
  EXPECT_EQ(call("GET", "/api/v1/models", viewer_)->status, 200);
}

// The rollout page's charts: the engine's gate history (the failing decision last, with
// the value it failed on) and the telemetry of the rollout's devices per artifact.
TEST_F(ConsoleApi, RolloutSeriesShowEachGateOverTimeAndTelemetryPerArtifact) {
  auto r = call("GET", "/api/v1/rollouts/canary-bad/series", viewer_);
  ASSERT_EQ(r->status, 200) << r->body;
  auto s = body(r);
  ASSERT_GE(s["gates"].size(), 1u) << s.dump();
  const auto& last = s["gates"].back();
  EXPECT_EQ(last["stage"], "decision");
  EXPECT_EQ(last["phase"], 0);
  ASSERT_EQ(last["results"].size(), 1u);
  EXPECT_EQ(last["results"][0]["metric"], "accuracy");
  EXPECT_EQ(last["results"][0]["bound"], 0.8);
  EXPECT_TRUE(last["results"][0]["known"]);
  EXPECT_FALSE(last["results"][0]["passed"]);
  EXPECT_NEAR(last["results"][0]["value"].get<double>(), 0.55, 1e-9);
  // The engine's statistical keys, as the real engine stored them: the interval holds the
  // value, the verdict is the decision, accuracy compares with no reference group.
  const auto& g = last["results"][0];
  EXPECT_EQ(g["verdict"], "fail") << g.dump();
  EXPECT_LE(g["lo"].get<double>(), g["value"].get<double>()) << g.dump();
  EXPECT_GE(g["hi"].get<double>(), g["value"].get<double>()) << g.dump();
  EXPECT_GE(g["canary"]["devices"].get<int>(), 1) << g.dump();
  EXPECT_FALSE(g.contains("reference")) << g.dump();
  for (size_t i = 1; i < s["gates"].size(); ++i) {
    EXPECT_LE(s["gates"][i - 1]["t"].get<double>(), s["gates"][i]["t"].get<double>());
  }
  ASSERT_EQ(s["telemetry"].size(), 1u) << s.dump();
  const auto& a = s["telemetry"][0];
  EXPECT_EQ(a["artifact"], fleet_.artifact);
  EXPECT_EQ(a["class"], kSeedClass);
  EXPECT_TRUE(a["target"]);
  int64_t windows = 0;
  for (const auto& p : a["points"]) {
    windows += p["windows"].get<int64_t>();
    EXPECT_NEAR(p["accuracy"].get<double>(), 0.55, 1e-9);
    EXPECT_NEAR(p["latency_p95_us"].get<double>(), 200, 1e-9);
  }
  EXPECT_EQ(windows, static_cast<int64_t>(fleet_.devices.size()));
  EXPECT_GE(s["bucket_seconds"].get<double>(), 1);

  r = call("GET", "/api/v1/rollouts/steady/series", viewer_);  // no gates, no telemetry
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(body(r)["gates"].empty());
  EXPECT_TRUE(body(r)["telemetry"].empty());
  EXPECT_EQ(call("GET", "/api/v1/rollouts/nope/series", viewer_)->status, 404);
  EXPECT_EQ(call("GET", "/api/v1/rollouts/canary-bad/series", "")->status, 401);
}

// The statistical gates' reports (the fixture's canary-control history): per clause the
// canary's value and the reference group's, the compared value's interval and the verdict,
// in the rollout's current gate results and in each evaluation of its series.
TEST_F(ConsoleApi, CanaryAgainstControlShowsBothGroupsTheIntervalAndTheVerdict) {
  auto r = call("GET", "/api/v1/rollouts/canary-control", viewer_);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto now = body(r)["gate_results"];
  ASSERT_EQ(now.size(), 2u) << now.dump();
  EXPECT_EQ(now[0]["metric"], "accuracy_drop");
  EXPECT_EQ(now[0]["verdict"], "fail");
  EXPECT_EQ(now[0]["timed_out"], false);
  EXPECT_NEAR(now[0]["value"].get<double>(), 0.14, 1e-9);
  EXPECT_LT(now[0]["lo"].get<double>(), 0.14);
  EXPECT_GT(now[0]["lo"].get<double>(), 0.05);  // the whole interval past the bound: fail
  EXPECT_NEAR(now[0]["canary"]["value"].get<double>(), 0.81, 1e-9);
  EXPECT_EQ(now[0]["canary"]["devices"], 12);
  EXPECT_EQ(now[0]["reference"]["group"], "control");
  EXPECT_NEAR(now[0]["reference"]["value"].get<double>(), 0.95, 1e-9);
  EXPECT_EQ(now[0]["reference"]["devices"], 11);
  EXPECT_EQ(now[1]["metric"], "failure_rate");
  EXPECT_EQ(now[1]["verdict"], "pass");
  EXPECT_FALSE(now[1].contains("reference"));  // not comparative

  r = call("GET", "/api/v1/rollouts/canary-control/series", viewer_);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto gates = body(r)["gates"];
  ASSERT_EQ(gates.size(), static_cast<size_t>(kControlLooks)) << gates.dump();
  for (size_t i = 0; i < gates.size(); ++i) {
    const auto& drop = gates[i]["results"][0];
    EXPECT_EQ(drop["verdict"], i + 1 == gates.size() ? "fail" : "wait") << i;
    EXPECT_EQ(drop["reference"]["group"], "control");
    EXPECT_LE(drop["lo"].get<double>(), drop["value"].get<double>());
    EXPECT_GE(drop["hi"].get<double>(), drop["value"].get<double>());
    if (i > 0) {  // the canary falls behind the control look by look
      EXPECT_LT(drop["canary"]["value"].get<double>(),
                gates[i - 1]["results"][0]["canary"]["value"].get<double>());
    }
  }
}

// The create-rollout form's body as the console's page sends it, from a gRPC request.
std::string form_of(const v1::CreateRolloutRequest& q) {
  json phases = json::array();
  for (const auto& p : q.phases()) {
    phases.push_back({{"percent", p.percent()}, {"bake_seconds", p.bake_seconds()}});
  }
  const auto& sel = q.selector();
  return json{
      {"name", q.name()},
      {"model", q.model()},
      {"version", q.version()},
      {"fleet", sel.fleet()},
      {"device_classes",
       std::vector<std::string>(sel.device_classes().begin(), sel.device_classes().end())},
      {"tags", std::vector<std::string>(sel.tags().begin(), sel.tags().end())},
      {"device_ids", std::vector<std::string>(sel.device_ids().begin(), sel.device_ids().end())},
      {"phases", phases},
      {"gates", q.gates()},
      {"on_gate_failure", q.on_gate_failure()},
      {"rate_per_minute", q.rate_per_minute()}}
      .dump();
}

v1::CreateRolloutRequest canary_request(const std::string& name) {
  v1::CreateRolloutRequest q;
  q.set_name(name);
  q.set_model("digits");
  q.set_version(1);
  q.mutable_selector()->add_tags("canary");  // canary-bad's devices, free since its rollback
  for (auto [percent, bake] : {std::pair{50, 3600}, {100, 0}}) {
    auto* p = q.add_phases();
    p->set_percent(percent);
    p->set_bake_seconds(bake);
  }
  q.set_gates("accuracy >= 0.8");
  return q;
}

TEST_F(ConsoleApi, OperatorsCreateARolloutAndViewersAreRefused) {
  const auto form = form_of(canary_request("from-api"));
  auto r = call("POST", "/api/v1/rollouts", viewer_, form);
  ASSERT_EQ(r->status, 403) << r->body;
  EXPECT_EQ(body(r).value("error", ""),
            "console.create needs role operator; token 'console-viewer' has role viewer");
  EXPECT_EQ(rollout_state("from-api"), "");

  r = call("POST", "/api/v1/rollouts", operator_, form);
  ASSERT_EQ(r->status, 201) << r->body;
  auto made = body(r);
  EXPECT_EQ(made["name"], "from-api");
  EXPECT_EQ(made["state"], "running");
  EXPECT_EQ(made["selected_devices"], 4);
  ASSERT_EQ(made["phases"].size(), 2u);
  EXPECT_EQ(made["phases"][0]["bake_seconds"], 3600);
  EXPECT_EQ(made["gates"], "accuracy >= 0.8");
  EXPECT_EQ(made["on_gate_failure"], "rollback");  // the defaults fleetctl's are
  EXPECT_EQ(made["rate_per_minute"], 600);
  EXPECT_EQ(rollout_state("from-api"), "running");
  auto audit = scratch_.db().transact([](pqxx::work& w) {
    return w
        .exec1(
            "SELECT actor FROM audit_log WHERE action = 'rollout.create' AND object = "
            "'rollout/from-api'")[0]
        .as<std::string>();
  });
  ASSERT_TRUE(audit) << audit.error().message;
  EXPECT_EQ(*audit, "console-operator");
  EXPECT_NE(fleetd_->log().find("\"event\":\"console.create\""), std::string::npos);

  r = call("POST", "/api/v1/rollouts", operator_, form);
  EXPECT_EQ(r->status, 409);
  EXPECT_EQ(body(r).value("error", ""), "a rollout named 'from-api' exists");
}

// The console refuses what CreateRollout refuses, with the same status and message
// (the one function behind both).
TEST_F(ConsoleApi, CreateRefusesWithTheMessagesFleetctlGets) {
  auto stub = v1::Rollouts::NewStub(fleetd_->channel());
  std::vector<std::pair<v1::CreateRolloutRequest, int>> cases;
  auto q = canary_request("Bad Name");
  cases.emplace_back(q, 400);
  q = canary_request("backwards");
  q.mutable_phases(1)->set_percent(40);
  cases.emplace_back(q, 400);
  q = canary_request("unknown-model");
  q.set_model("nope");
  cases.emplace_back(q, 404);
  q = canary_request("unknown-version");
  q.set_version(9);
  cases.emplace_back(q, 404);
  q = canary_request("no-devices");
  q.mutable_selector()->set_tags(0, "nowhere");
  cases.emplace_back(q, 400);
  q = canary_request("taken");
  q.mutable_selector()->set_tags(0, "steady");
  cases.emplace_back(q, 409);
  q = canary_request("bad-gates");
  q.set_gates("accuracy >> 0.8");
  cases.emplace_back(q, 400);
  q = canary_request("bad-action");
  q.set_on_gate_failure("explode");
  cases.emplace_back(q, 400);
  for (const auto& [req, status] : cases) {
    v1::Rollout out;
    const auto g = stub->CreateRollout(context_with_token(operator_).get(), req, &out);
    ASSERT_FALSE(g.ok()) << req.name();
    const auto r = call("POST", "/api/v1/rollouts", operator_, form_of(req));
    EXPECT_EQ(r->status, status) << req.name() << ": " << r->body;
    EXPECT_EQ(body(r).value("error", ""), g.error_message()) << req.name();
  }
  EXPECT_EQ(rollout_state("taken"), "");
  // The form's own bounds and types, before any database work.
  const std::vector<std::pair<std::string, std::string>> forms = {
      {"{", "the body is not JSON"},
      {"[]", "the body must be a JSON object"},
      {R"({"name":"x","model":"digits","version":"1"})",
       "version must be a whole number 0..4294967295"},
      {R"({"model":"digits","version":1})", "the form needs name"},
      {R"({"name":"x","model":"digits","version":1,"colour":"red"})", "unknown field 'colour'"},
      {R"({"name":"x","model":"digits","version":1,"tags":"a,b"})",
       "tags must be a list of strings"},
      {R"({"name":"x","model":"digits","version":1,"phases":[{"percent":-5}]})",
       "phases[0].percent must be a whole number 0..4294967295"}};
  for (const auto& [text, error] : forms) {
    const auto r = call("POST", "/api/v1/rollouts", operator_, text);
    EXPECT_EQ(r->status, 400) << text;
    EXPECT_EQ(body(r).value("error", ""), error) << text;
  }
  EXPECT_EQ(call("POST", "/api/v1/rollouts", operator_, std::string(20000, ' '))->status, 413);
}

// More devices than one page: the pages cover every device once, in order, and the counts
// are the whole fleet's on every page.
TEST_F(ConsoleApi, FleetPagesThroughMoreDevicesThanOnePage) {
  ASSERT_TRUE(scratch_.db().transact([](pqxx::work& w) {
    w.exec_params(
        "INSERT INTO devices (id, fleet, device_class, credential_hash) SELECT 'pg-' || "
        "lpad(i::text, 5, '0'), 'default', $1, 'h' FROM generate_series(1, 1100) i",
        std::string(kSeedClass));
    return 0;
  }));
  std::vector<std::string> ids;
  std::string after;
  for (int page = 0; page < 5; ++page) {
    auto r = call("GET", "/api/v1/fleet" + (after.empty() ? "" : "?after=" + after), viewer_);
    ASSERT_EQ(r->status, 200) << r->body;
    auto f = body(r);
    EXPECT_EQ(f["total"], 1108);
    EXPECT_EQ(f["by_class"][kSeedClass], 1108);
    EXPECT_EQ(f["by_model"]["none"], 1100);
    EXPECT_EQ(f["by_model"]["digits v1"], 8);
    EXPECT_LE(f["shown"].get<int>(), 500);
    for (const auto& d : f["devices"]) ids.push_back(d["id"]);
    after = f["next"];
    if (after.empty()) break;
    EXPECT_EQ(after, ids.back());
  }
  ASSERT_EQ(ids.size(), 1108u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());
  auto bad = call("GET", "/api/v1/fleet?after=-x", viewer_);  // not a device id
  EXPECT_EQ(bad->status, 400) << bad->body.substr(0, 200);
}

TEST_F(ConsoleApi, OperatorsPauseAndViewersAreRefusedWithTheReason) {
  auto r = call("POST", "/api/v1/rollouts/steady/pause", viewer_);
  ASSERT_EQ(r->status, 403) << r->body;
  EXPECT_EQ(body(r).value("error", ""),
            "console.pause needs role operator; token 'console-viewer' has role viewer");
  EXPECT_NE(fleetd_->log().find("\"method\":\"console.pause\""), std::string::npos);
  EXPECT_EQ(rollout_state("steady"), "running");

  r = call("POST", "/api/v1/rollouts/steady/pause", operator_);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(body(r)["state"], "paused");
  EXPECT_EQ(body(r)["reason"], "paused by console-operator");
  EXPECT_EQ(rollout_state("steady"), "paused");

  r = call("POST", "/api/v1/rollouts/steady/pause", operator_);
  EXPECT_EQ(r->status, 409);
  EXPECT_EQ(body(r).value("error", ""), "rollout 'steady' is paused; pause needs it running");
  EXPECT_EQ(call("POST", "/api/v1/rollouts/nope/abort", operator_)->status, 404);
  EXPECT_EQ(call("POST", "/api/v1/rollouts/steady/explode", operator_)->status, 404);
}

TEST_F(ConsoleApi, ServesTheEmbeddedPages) {
  httplib::Client client("127.0.0.1", fleetd_->console_port());
  auto r = client.Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("<script src=\"/console.js\""), std::string::npos);
  EXPECT_NE(r->get_header_value("Content-Security-Policy").find("default-src 'self'"),
            std::string::npos);
  EXPECT_EQ(client.Get("/console.js")->status, 200);
  EXPECT_EQ(client.Get("/nothing.html")->status, 404);
}

TEST_F(ConsoleApi, FleetdRefusesPlaintextOffLoopbackAndMalformedAddresses) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"0.0.0.0:0",
       "is not a loopback address: serving the console off this host needs "
       "tls.cert_file and tls.key_file"},
      {"127.0.0.1", "console.listen '127.0.0.1': needs host:port"},
      {"127.0.0.1:70000", "the port must be a number 0..65535"},
      {"::1:8443", "an IPv6 host goes in brackets"},
      {"127.0.0.1:" + std::to_string(fleetd_->console_port()), "the console cannot listen on"}};
  for (const auto& [listen, expected] : cases) {
    const auto r = run_command(
        std::string("timeout 30 ") + TINYFLEET_FLEETD_PATH + " --database.uri='" + scratch_.uri() +
        "' --listen=127.0.0.1:0 --metrics.listen= --console.listen=" + listen + " 2>&1");
    EXPECT_NE(r.exit, 0) << listen;
    EXPECT_NE(r.out.find(expected), std::string::npos) << listen << ": " << r.out;
  }
}

// A fleetd without keys.dir sends no updates: the console refuses a rollout as
// CreateRollout does, saying what is missing.
class ConsoleUpdatesOff : public FleetdTest {};

TEST_F(ConsoleUpdatesOff, CreateIsRefusedWithTheReason) {
  ASSERT_GT(fleetd_->console_port(), 0) << fleetd_->log();
  v1::CreateRolloutRequest q;
  q.set_name("r");
  q.set_model("digits");
  q.set_version(1);
  v1::Rollout out;
  const auto g = v1::Rollouts::NewStub(fleetd_->channel())
                     ->CreateRollout(context_with_token(admin_).get(), q, &out);
  ASSERT_EQ(g.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << g.error_message();
  httplib::Client client("127.0.0.1", fleetd_->console_port());
  const auto r = client.Post("/api/v1/rollouts", {{"Authorization", "Bearer " + admin_}},
                             R"({"name":"r","model":"digits","version":1})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 409);
  EXPECT_EQ(json::parse(r->body).value("error", ""), g.error_message());
  EXPECT_NE(g.error_message().find("fleetd cannot send updates"), std::string::npos);
}

// With tls.cert_file and tls.key_file the console is HTTPS with the gRPC certificate.
class ConsoleTls : public FleetdTest {
 protected:
  std::map<std::string, std::string> fleetd_settings() override {
    return {{"tls.cert_file", require_env("TINYFLEET_TLS_CERT")},
            {"tls.key_file", require_env("TINYFLEET_TLS_KEY")}};
  }
};

TEST_F(ConsoleTls, ServesHttpsWithTheGrpcCertificate) {
  ASSERT_GT(fleetd_->console_port(), 0) << fleetd_->log();
  httplib::SSLClient client("localhost", fleetd_->console_port());
  client.set_ca_cert_path(require_env("TINYFLEET_TLS_CA").c_str());
  client.enable_server_certificate_verification(true);
  auto r = client.Get("/api/v1/whoami", {{"Authorization", "Bearer " + admin_}});
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["role"], "admin");
  // Plaintext is not answered.
  httplib::Client plain("127.0.0.1", fleetd_->console_port());
  plain.set_read_timeout(3, 0);
  auto p = plain.Get("/api/v1/whoami", {{"Authorization", "Bearer " + admin_}});
  EXPECT_TRUE(!p || p->status != 200);
}

}  // namespace
}  // namespace tinyfleet::testing
