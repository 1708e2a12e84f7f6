// The console's HTTP/JSON API on a real fleetd (PostgreSQL, Mosquitto): tokens and roles
// as gRPC has them, the documents the pages draw, and the operator actions.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "console_stack.h"

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

}  // namespace
}  // namespace tinyfleet::testing
