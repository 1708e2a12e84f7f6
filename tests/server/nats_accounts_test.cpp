// NATS device accounts as fleetd writes them (nats.accounts_file): the entry format and
// its reader (operator lines read back, errors naming the line), bcrypt hashes libxcrypt
// verifies, and BrokerAccounts editing a NATS file (the operator's lines kept, entries
// before the closing ']'). nats-server accepting them is nats_accounts_server_test.
#include <crypt.h>
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "tinyfleet/server/broker_accounts.h"
#include "tinyfleet/server/broker_password.h"
#include "tinyfleet/server/nats_accounts.h"

namespace fs = std::filesystem;
using namespace tinyfleet;
using server::nats_entry_user;
using server::parse_nats_accounts;

namespace {

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string error_of(const std::vector<std::string>& lines) {
  auto r = parse_nats_accounts(lines);
  return r ? "" : r.error().message;
}

TEST(NatsAccounts, AnEntryHasTheDevicesPermissionsOnOneLine) {
  const std::string e = server::nats_account_entry("dev-1", "plant", "$2b$04$abc");
  EXPECT_EQ(e,
            "  { user: \"dev-1\", password: \"$2b$04$abc\", permissions: { publish: "
            "[\"tinyfleet.v1.plant.dev-1.chunk.req\", \"tinyfleet.v1.plant.dev-1.status\", "
            "\"tinyfleet.v1.plant.dev-1.telemetry\", \"tinyfleet.v1.plant.dev-1.presence\", "
            "\"$MQTT.>\"], subscribe: [\"tinyfleet.v1.plant.dev-1.offer\", "
            "\"tinyfleet.v1.plant.dev-1.chunk\", \"tinyfleet.v1.plant.dev-1.presence\", "
            "\"$MQTT.>\"] } }");
  auto user = nats_entry_user(e);
  ASSERT_TRUE(user) << user.error().message;
  EXPECT_EQ(*user, "dev-1");
  // A '.' inside a name is "//" in the subject (nats-server's MQTT mapping).
  const std::string dotted = server::nats_account_entry("d.1", "default", "$2b$04$x");
  EXPECT_NE(dotted.find("\"tinyfleet.v1.default.d//1.status\""), std::string::npos) << dotted;
  EXPECT_EQ(*nats_entry_user(dotted), "d.1");
}

TEST(NatsAccounts, ReadsTheOperatorsLinesBack) {
  EXPECT_EQ(*nats_entry_user("{user: fleetd, password: \"x y\"}"), "fleetd");
  EXPECT_EQ(*nats_entry_user("  { \"user\" = 'svc a', password: $2a$11$abc },  # svc"), "svc a");
  EXPECT_EQ(*nats_entry_user("{ password: \"}{\", USERNAME: ops, permissions: {publish: "
                             "{allow: [\"a.>\"]}} }"),
            "ops");
  auto index = parse_nats_accounts({"# written by hand", "users = [", "", "  {user: fleetd}",
                                    "  // a comment", "  { user: \"dev\", password: \"p\" },", "]",
                                    "# end"});
  ASSERT_TRUE(index) << index.error().message;
  EXPECT_EQ(index->close, 6u);
  EXPECT_EQ(index->users.at("fleetd"), 3u);
  EXPECT_EQ(index->users.at("dev"), 5u);
  EXPECT_TRUE(parse_nats_accounts({"users: [", "]"}));
  EXPECT_TRUE(parse_nats_accounts({"USERS [ # the list", "],"}));
}

TEST(NatsAccounts, RefusesWhatItDoesNotUnderstandNamingTheLine) {
  EXPECT_EQ(error_of({}), "no 'users = [' line (expected: 'users = [', entries, ']')");
  EXPECT_EQ(error_of({"users = ["}), "no closing ']' after the entries");
  EXPECT_EQ(error_of({"timeout: 10", "users = [", "]"}),
            "line 1: expected 'users = [' before anything else");
  EXPECT_EQ(error_of({"users = [", "{", "  user: a", "}", "]"}),
            "line 2: the entry is not closed on this line (one entry, one line)");
  EXPECT_EQ(error_of({"users = [", "{user: a}", "{user: \"a\"}", "]"}),
            "line 3: user 'a' is already on line 2");
  EXPECT_EQ(error_of({"users = [", "{password: x}", "]"}), "line 2: the entry has no user");
  EXPECT_EQ(error_of({"users = [", "{user: a, user: b}", "]"}),
            "line 2: the entry names its user twice");
  EXPECT_EQ(error_of({"users = [", "{user: {x: 1}}", "]"}),
            "line 2: the entry's user is not a plain name");
  EXPECT_EQ(error_of({"users = [", "{user: \"a\\\"b\"}", "]"}),
            "line 2: the entry's user is not a plain name");
  EXPECT_EQ(error_of({"users = [", "{user: a} x", "]"}), "line 2: unexpected 'x'");
  EXPECT_EQ(error_of({"users = [", "{user: \"a}", "]"}),
            "line 2: a string is not closed on this line");
  EXPECT_EQ(error_of({"users = [", "{user: a, p: [1, {2: 3]}", "]"}),
            "line 2: ']' does not match at column 23");
  EXPECT_EQ(error_of({"users = [", "user: a", "]"}),
            "line 2: expected an entry '{ user: NAME, ... }' on one line, or ']'");
  EXPECT_EQ(error_of({"users = [", "]", "{user: a}"}),
            "line 3: only comments may follow the closing ']'");
  // Bounded: line length and nesting.
  EXPECT_EQ(error_of({"users = [", "{user: a, p: \"" + std::string(5000, 'x') + "\"}", "]"}),
            "line 2: longer than 4096 bytes");
  EXPECT_EQ(error_of({"users = [",
                      "{user: a, p: " + std::string(9, '[') + std::string(9, ']') + "}", "]"}),
            "line 2: blocks nested deeper than 8");
}

TEST(NatsBcrypt, HashesVerifyWithLibxcrypt) {
  const std::string pw = "abcdefghijklmnopqrstuvwx";  // 24 characters, as devices get
  const std::string h = server::nats_password_hash(pw);
  ASSERT_EQ(h.size(), 60u) << h;
  EXPECT_EQ(h.rfind("$2b$04$", 0), 0u) << h;
  // crypt_rn of the password with the stored hash as setting gives the hash back.
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof *data);
  const char* again = crypt_rn(pw.c_str(), h.c_str(), data.get(), sizeof *data);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(std::string(again), h);
  EXPECT_TRUE(server::bcrypt_matches(pw, h));
  EXPECT_FALSE(server::bcrypt_matches(pw + "y", h));
  EXPECT_FALSE(server::bcrypt_matches(pw, "plain"));
  EXPECT_NE(server::nats_password_hash(pw), h);  // a fresh salt each time
  // A known answer (OpenBSD's test vector): the algorithm, not only ourselves.
  EXPECT_TRUE(server::bcrypt_matches(
      "U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
  EXPECT_EQ(server::nats_password_hash(pw, 3), "");  // below nats-server's minimum
}

// The time per hash by cost (the figures docs/scale.md quotes).
TEST(NatsBcrypt, CostPerHash) {
  for (int cost = 4; cost <= 10; ++cost) {
    const int n = cost <= 6 ? 50 : 5;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) ASSERT_FALSE(server::nats_password_hash("x", cost).empty());
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("bcrypt cost %d: %.2f ms a hash\n", cost, ms / n);
  }
}

class NatsAccountsFile : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    dir_ = fs::temp_directory_path() / ("tf-nats-accounts-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    file_ = dir_ / "accounts.conf";
    std::ofstream(file_) << "# the operator's\nusers = [\n  { user: fleetd, password: \"s3cret\" "
                            "}\n  {user: svc}\n]\n# end\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_, file_;
};

TEST_F(NatsAccountsFile, AddsReplacesAndRemovesKeepingTheOperatorsLines) {
  server::BrokerAccounts accounts(server::AccountFormat::kNats, file_.string(), {});
  ASSERT_TRUE(accounts.add("dev-1", "pw-one", "plant"));
  ASSERT_TRUE(accounts.add("dev-2", "pw-two"));
  auto lines = lines_of(file_);
  ASSERT_EQ(lines.size(), 8u);
  EXPECT_EQ(lines[2], "  { user: fleetd, password: \"s3cret\" }");
  EXPECT_EQ(lines[3], "  {user: svc}");
  EXPECT_EQ(*nats_entry_user(lines[4]), "dev-1");
  EXPECT_NE(lines[4].find("tinyfleet.v1.plant.dev-1.offer"), std::string::npos);
  EXPECT_EQ(*nats_entry_user(lines[5]), "dev-2");
  EXPECT_EQ(lines[6], "]");
  EXPECT_EQ(lines[7], "# end");
  const auto hash_of = [](const std::string& line) {
    const auto at = line.find("password: \"") + 11;
    return line.substr(at, line.find('"', at) - at);
  };
  EXPECT_TRUE(server::bcrypt_matches("pw-one", hash_of(lines[4])));
  ASSERT_TRUE(accounts.replace("dev-1", "pw-new", "plant"));
  lines = lines_of(file_);
  EXPECT_TRUE(server::bcrypt_matches("pw-new", hash_of(lines[4])));
  EXPECT_FALSE(server::bcrypt_matches("pw-one", hash_of(lines[4])));
  ASSERT_TRUE(accounts.remove("dev-1"));
  lines = lines_of(file_);
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(*nats_entry_user(lines[4]), "dev-2");
  EXPECT_EQ(lines[5], "]");
  EXPECT_TRUE(parse_nats_accounts(lines));
}

TEST_F(NatsAccountsFile, NeverTakesOverAReservedOrOperatorsAccount) {
  server::BrokerAccounts accounts(server::AccountFormat::kNats, file_.string(), {}, {"ops"});
  const std::string before = std::to_string(fs::file_size(file_));
  auto r = accounts.add("svc", "x");  // the operator's line
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, storage::ErrorCode::kAlreadyExists);
  EXPECT_EQ(accounts.add("fleetd", "x").error().code, storage::ErrorCode::kFailedPrecondition);
  EXPECT_EQ(accounts.add("ops", "x").error().code, storage::ErrorCode::kFailedPrecondition);
  EXPECT_EQ(accounts.add("a\"b", "x").error().code, storage::ErrorCode::kInvalidArgument);
  EXPECT_EQ(accounts.add("a", "x", "f}").error().code, storage::ErrorCode::kInvalidArgument);
  EXPECT_EQ(accounts.replace("nobody", "x").error().code, storage::ErrorCode::kNotFound);
  EXPECT_EQ(std::to_string(fs::file_size(file_)), before);
}

TEST_F(NatsAccountsFile, AFileItDoesNotUnderstandIsLeftAlone) {
  std::ofstream(file_) << "users = [\n  {\n    user: fleetd\n  }\n]\n";
  const auto before = lines_of(file_);
  server::BrokerAccounts accounts(server::AccountFormat::kNats, file_.string(), {});
  auto r = accounts.add("dev-1", "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, storage::ErrorCode::kFailedPrecondition);
  EXPECT_EQ(r.error().message,
            "NATS accounts file " + file_.string() +
                ", line 2: the entry is not closed on this line (one entry, one line): fleetd "
                "does not edit it");
  EXPECT_EQ(lines_of(file_), before);
}

TEST_F(NatsAccountsFile, RefusesWhenEveryNodeIsGone) {
  // A pid that is no process (fork, reap): every listed node gone is refused.
  const pid_t gone = fork();
  if (gone == 0) _exit(0);
  ASSERT_GT(gone, 0);
  waitpid(gone, nullptr, 0);
  server::BrokerAccounts none(server::AccountFormat::kNats, file_.string(), {gone});
  auto r = none.add("dev-1", "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, storage::ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("nats.pids (" + std::to_string(gone) + ")"), std::string::npos)
      << r.error().message;
}

}  // namespace
