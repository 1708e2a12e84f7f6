// Tokens over real gRPC and PostgreSQL: they expire (a default lifetime, refused with
// "expired" afterwards), and every refused call reaches the audit log, aggregated so a
// flood of bad tokens writes a bounded number of rows.
#include <gtest/gtest.h>

#include <thread>

#include "fleetd_fixture.h"
#include "tinyfleet/storage/repositories.h"

using namespace std::chrono_literals;

namespace tinyfleet::testing {
namespace {

class Tokens : public FleetdTest {
 protected:
  grpc::Status list_devices(const std::string& token) {
    v1::ListDevicesResponse resp;
    return devices_->ListDevices(context_with_token(token).get(), {}, &resp);
  }
  grpc::Status create(const std::string& name, uint64_t ttl, v1::CreateTokenResponse* out) {
    v1::CreateTokenRequest req;
    req.set_name(name);
    req.set_role(v1::ROLE_VIEWER);
    req.set_ttl_seconds(ttl);
    return admin_api_->CreateToken(context_with_token(admin_).get(), req, out);
  }
  // The audit rows of refused calls: (actor, action, object, summed count, rows).
  struct Denials {
    int64_t count = 0, rows = 0;
  };
  Denials denials(const std::string& actor, const std::string& action, const std::string& object) {
    return scratch_.db()
        .transact([&](pqxx::work& w) {
          auto r = w.exec_params1(
              "SELECT COALESCE(sum((details->>'count')::bigint), 0), count(*) FROM audit_log "
              "WHERE actor = $1 AND action = $2 AND object = $3",
              actor, action, object);
          return Denials{r[0].as<int64_t>(), r[1].as<int64_t>()};
        })
        .value();
  }
};

TEST_F(Tokens, ATokenExpiresAndIsThenRefusedNamingExpired) {
  v1::CreateTokenResponse shortlived;
  ASSERT_TRUE(create("short", 2, &shortlived).ok());
  EXPECT_FALSE(shortlived.token().expires_at().empty());
  EXPECT_FALSE(shortlived.token().expired());
  EXPECT_TRUE(list_devices(shortlived.secret()).ok());
  grpc::Status s;
  for (int i = 0; i < 50; ++i) {
    s = list_devices(shortlived.secret());
    if (!s.ok()) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("expired"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("'short'"), std::string::npos) << s.error_message();

  v1::ListTokensResponse tokens;
  ASSERT_TRUE(admin_api_->ListTokens(context_with_token(admin_).get(), {}, &tokens).ok());
  bool listed = false;
  for (const auto& t : tokens.tokens()) {
    if (t.name() == "short") listed = t.expired();
    // The bootstrap admin token from fleetd's settings never expires.
    if (t.name() == "bootstrap-admin") {
      EXPECT_TRUE(t.expires_at().empty());
    }
  }
  EXPECT_TRUE(listed);
}

TEST_F(Tokens, TokensGetNinetyDaysUnlessToldAndNoMoreThanTenYears) {
  v1::CreateTokenResponse plain;
  ASSERT_TRUE(create("plain", 0, &plain).ok());
  EXPECT_TRUE(list_devices(plain.secret()).ok());
  auto days = scratch_.db().transact([](pqxx::work& w) {
    return w
        .exec1(
            "SELECT extract(epoch FROM expires_at - created_at)::bigint FROM api_tokens "
            "WHERE name = 'plain'")[0]
        .as<int64_t>();
  });
  ASSERT_TRUE(days);
  EXPECT_EQ(*days, 90LL * 86400);
  v1::CreateTokenResponse too_long;
  auto s = create("forever", 11ULL * 366 * 86400, &too_long);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("ten years"), std::string::npos) << s.error_message();
}

TEST_F(Tokens, DenialsAreAuditedAndAFloodWritesFewRows) {
  const std::string viewer = make_token("watcher", v1::ROLE_VIEWER);
  constexpr int kBad = 300;
  for (int i = 0; i < kBad; ++i) {
    const std::string bad = "tf_not_a_token_" + std::to_string(i) + "_padding_padding";
    ASSERT_EQ(list_devices(bad).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  v1::ProvisionDeviceRequest req;
  req.set_id("d-1");
  req.set_device_class("none");
  v1::ProvisionDeviceResponse out;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(devices_->ProvisionDevice(context_with_token(viewer).get(), req, &out).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  // Counted in memory and written by one thread every few seconds.
  Denials bad, denied;
  for (int i = 0; i < 150; ++i) {
    bad = denials("anonymous", "auth.unauthenticated", "method/ListDevices");
    denied = denials("watcher", "auth.permission_denied", "method/ProvisionDevice");
    if (bad.count == kBad && denied.count == 3) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(bad.count, kBad);
  EXPECT_LE(bad.rows, 3) << "a flood of bad tokens wrote one row per call";
  EXPECT_EQ(denied.count, 3);
  EXPECT_LE(denied.rows, 2);
  auto reason = scratch_.db().transact([](pqxx::work& w) {
    return w.exec1("SELECT details->>'reason' FROM audit_log WHERE actor = 'watcher' LIMIT 1")[0]
        .as<std::string>();
  });
  ASSERT_TRUE(reason);
  EXPECT_NE(reason->find("needs role operator"), std::string::npos) << *reason;
  EXPECT_LE(count_rows("audit_log"), 10);
}

}  // namespace
}  // namespace tinyfleet::testing
