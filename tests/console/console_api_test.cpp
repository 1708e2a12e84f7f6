// The console's HTTP/JSON API on a real fleetd (PostgreSQL, Mosquitto): tokens and roles
// as gRPC has them, the documents the pages draw, and the operator actions.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "console_stack.h"
#include "tinyfleet/testing/environment.h"

namespace tinyfleet::testing {
namespace {

using nlohmann::json;

class ConsoleApi : public ConsoleStack {
 protected:
  httplib::Result call(const std::string& method, const std::string& path,
                       const std::string& token) {
    httplib::Client client("127.0.0.1", fleetd_->console_port());
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return method == "GET" ? client.Get(path, headers) : client.Post(path, headers, "", "");
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
  EXPECT_EQ(f["total"], 6);
  EXPECT_EQ(f["by_class"][kSeedClass], 6);
  EXPECT_EQ(f["by_model"]["digits v1"], 6);
  ASSERT_EQ(f["devices"].size(), 6u);
  EXPECT_EQ(f["devices"][0]["id"], "dev-1000");
  EXPECT_NE(f["devices"][0].at("last_telemetry"), "");  // the canary's devices reported
  EXPECT_EQ(f["devices"][5]["id"], "dev-steady-1");
  EXPECT_EQ(f["devices"][5].at("last_telemetry"), "");

  r = call("GET", "/api/v1/rollouts/canary-bad", viewer_);
  ASSERT_EQ(r->status, 200) << r->body;
  auto bad = body(r);
  EXPECT_EQ(bad["state"], "rolled_back");
  EXPECT_EQ(bad["phases"][0]["state"], "failed");
  EXPECT_NE(bad["reason"].get<std::string>().find("accuracy"), std::string::npos) << bad.dump();

  r = call("GET", "/api/v1/rollouts", viewer_);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(body(r).size(), 2u);
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
    EXPECT_EQ(f["total"], 1106);
    EXPECT_EQ(f["by_class"][kSeedClass], 1106);
    EXPECT_EQ(f["by_model"]["none"], 1100);
    EXPECT_EQ(f["by_model"]["digits v1"], 6);
    EXPECT_LE(f["shown"].get<int>(), 500);
    for (const auto& d : f["devices"]) ids.push_back(d["id"]);
    after = f["next"];
    if (after.empty()) break;
    EXPECT_EQ(after, ids.back());
  }
  ASSERT_EQ(ids.size(), 1106u);
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
