// The broker's password file as fleetd writes it: entries Mosquitto's own tool agrees
// with (PBKDF2-SHA512, mosquitto_passwd's format), no subprocess (so no password on a
// command line), reserved and non-device accounts never taken over, durable replace.
// The real broker accepting these entries is tested in fleetd_devices_test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "tinyfleet/server/broker_accounts.h"
#include "tinyfleet/server/broker_password.h"

namespace fs = std::filesystem;
using namespace tinyfleet;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string unbase64(const std::string& b64) {
  std::string out(b64.size(), '\0');
  size_t len = 0;
  EXPECT_EQ(sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), b64.data(),
                              b64.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL),
            0);
  out.resize(len);
  return out;
}

// The entry of `user` in a password file: "$7$<iter>$<salt>$<hash>".
std::string entry_of(const std::string& text, const std::string& user) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(user + ":", 0) == 0) return line.substr(user.size() + 1);
  }
  return "";
}

class BrokerAccountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    dir_ = fs::temp_directory_path() / ("tf-broker-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    file_ = dir_ / "passwd";
    std::ofstream(file_) << "# accounts\nfleetd:$7$101$c2FsdA==$aGFzaA==\nsvc:$7$101$x$y\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_, file_;
};

TEST(BrokerPassword, MatchesMosquittoPasswdOutput) {
  ASSERT_GE(sodium_init(), 0);
  const fs::path f = fs::temp_directory_path() / ("tf-mpw-" + std::to_string(getpid()));
  std::ofstream(f).close();
  // mosquitto_passwd reads the password twice from stdin (no -b: not on its command line).
  const std::string cmd = "printf 'p4ss word\\np4ss word\\n' | mosquitto_passwd " + f.string() +
                          " alice >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string theirs = entry_of(read_text(f), "alice");
  fs::remove(f);
  ASSERT_EQ(theirs.rfind("$7$101$", 0), 0u) << theirs;
  const auto salt_end = theirs.find('$', 7);
  ASSERT_NE(salt_end, std::string::npos);
  const std::string salt = unbase64(theirs.substr(7, salt_end - 7));
  EXPECT_EQ(salt.size(), 12u);
  EXPECT_EQ(server::mosquitto_password_hash("p4ss word", salt, 101), theirs);
  EXPECT_NE(server::mosquitto_password_hash("p4ss worD", salt, 101), theirs);
  // Fresh salts: two hashes of one password differ, and have mosquitto_passwd's shape.
  const auto a = server::mosquitto_password_hash("x"), b = server::mosquitto_password_hash("x");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), theirs.size());
}

TEST(BrokerPassword, Pbkdf2Sha512KnownAnswer) {
  ASSERT_GE(sodium_init(), 0);
  // RFC 6070-style vector for PBKDF2-HMAC-SHA512 ("password", "salt", c = 1 and 2).
  auto hex = [](const std::string& raw) {
    std::string out(raw.size() * 2 + 1, '\0');
    sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                   raw.size());
    out.pop_back();
    return out;
  };
  EXPECT_EQ(hex(server::pbkdf2_sha512("password", "salt", 1)),
            "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252"
            "c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce");
  EXPECT_EQ(hex(server::pbkdf2_sha512("password", "salt", 2)),
            "e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53c"
            "f76cab2868a39b9f7840edce4fef5a82be67335c77a6068e04112754f27ccf4e");
}

TEST_F(BrokerAccountsTest, AddsReplacesAndRemovesWithoutAnySubprocess) {
  // No mosquitto_passwd to run: fleetd must not need one (a password in its argv
  // would be readable in /proc).
  const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  setenv("PATH", "/nonexistent", 1);
  server::BrokerAccounts accounts(file_.string(), 0);
  auto added = accounts.add("dev-1", "first");
  setenv("PATH", path.c_str(), 1);
  ASSERT_TRUE(added) << added.error().message;
  std::string text = read_text(file_);
  EXPECT_NE(text.find("# accounts\n"), std::string::npos);  // other lines kept
  const std::string first = entry_of(text, "dev-1");
  ASSERT_FALSE(first.empty());
  const std::string salt = unbase64(first.substr(7, first.find('$', 7) - 7));
  EXPECT_EQ(server::mosquitto_password_hash("first", salt, 101), first);

  ASSERT_TRUE(accounts.replace("dev-1", "second"));
  const std::string second = entry_of(read_text(file_), "dev-1");
  const std::string salt2 = unbase64(second.substr(7, second.find('$', 7) - 7));
  EXPECT_EQ(server::mosquitto_password_hash("second", salt2, 101), second);
  EXPECT_EQ(accounts.replace("ghost", "x").error().code, storage::ErrorCode::kNotFound);

  ASSERT_TRUE(accounts.remove("dev-1"));
  text = read_text(file_);
  EXPECT_EQ(entry_of(text, "dev-1"), "");
  EXPECT_NE(entry_of(text, "svc"), "");
  // Written durably through a temporary file that does not stay behind, owner-only.
  EXPECT_FALSE(fs::exists(file_.string() + ".tmp"));
  struct stat st {};
  ASSERT_EQ(::stat(file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(BrokerAccountsTest, NeverTakesOverAReservedOrExistingAccount) {
  server::BrokerAccounts accounts(file_.string(), 0, {"svc-server"});
  const std::string before = read_text(file_);
  auto fleetd = accounts.add("fleetd", "stolen");
  ASSERT_FALSE(fleetd);
  EXPECT_EQ(fleetd.error().code, storage::ErrorCode::kFailedPrecondition);
  EXPECT_NE(fleetd.error().message.find("reserved"), std::string::npos);
  auto configured = accounts.add("svc-server", "stolen");
  ASSERT_FALSE(configured);
  EXPECT_NE(configured.error().message.find("reserved"), std::string::npos);
  auto existing = accounts.add("svc", "stolen");
  ASSERT_FALSE(existing);
  EXPECT_EQ(existing.error().code, storage::ErrorCode::kAlreadyExists);
  EXPECT_NE(existing.error().message.find("not a device"), std::string::npos);
  EXPECT_FALSE(accounts.replace("fleetd", "stolen"));
  EXPECT_FALSE(accounts.remove("fleetd"));
  EXPECT_FALSE(accounts.add("a:b", "x"));
  EXPECT_FALSE(accounts.add("a\nfleetd", "x"));
  EXPECT_EQ(read_text(file_), before);
}

TEST_F(BrokerAccountsTest, ConcurrentAddsShareOneWrite) {
  server::BrokerAccounts accounts(file_.string(), 0);
  // Another process (a replica) holds the file lock: the first add's writer waits for it
  // with its own edit; the adds that come meanwhile queue up for the next write.
  const int lock_fd = ::open((file_.string() + ".lock").c_str(), O_CREAT | O_RDWR, 0600);
  ASSERT_GE(lock_fd, 0);
  ASSERT_EQ(flock(lock_fd, LOCK_EX), 0);
  constexpr int kAdds = 8;
  std::vector<std::thread> callers;
  std::vector<int> ok(kAdds, 0);  // not vector<bool>: each thread writes its own element
  for (int i = 0; i < kAdds; ++i) {
    callers.emplace_back([&, i] {
      ok[i] = bool(accounts.add("dev-" + std::to_string(i), "p" + std::to_string(i)));
    });
  }
  // The first add to come writes its own edit (and waits for the lock); the other seven
  // queue behind it.
  while (accounts.queued() < kAdds - 1) std::this_thread::yield();
  ::close(lock_fd);  // releases the lock
  for (auto& c : callers) c.join();
  const std::string text = read_text(file_);
  for (int i = 0; i < kAdds; ++i) {
    EXPECT_TRUE(ok[i]) << i;
    EXPECT_NE(entry_of(text, "dev-" + std::to_string(i)), "") << i;
  }
  EXPECT_NE(text.find("# accounts\n"), std::string::npos);
  EXPECT_EQ(accounts.writes(), 2u);  // the first add's, then the other seven's together
  // The same name from two callers at once (one batch or two): one wins, one is refused.
  std::vector<std::thread> twins;
  std::vector<storage::ErrorCode> codes(2, storage::ErrorCode::kInternal);
  std::vector<int> won(2, 0);
  for (int i = 0; i < 2; ++i) {
    twins.emplace_back([&, i] {
      auto r = accounts.add("twin", "x");
      won[i] = bool(r);
      if (!r) codes[i] = r.error().code;
    });
  }
  for (auto& t : twins) t.join();
  EXPECT_EQ(won[0] + won[1], 1);
  EXPECT_EQ(codes[won[0] ? 1 : 0], storage::ErrorCode::kAlreadyExists);
  const std::string after = read_text(file_);
  EXPECT_EQ(after.find("twin:"), after.rfind("twin:"));
}

TEST_F(BrokerAccountsTest, SeesWhatAnotherProcessWrote) {
  // Two writers of one file (two fleetd replicas): each keeps the lines in memory, and
  // re-reads them when the file changed under it, so neither loses the other's accounts.
  server::BrokerAccounts a(file_.string(), 0), b(file_.string(), 0);
  ASSERT_TRUE(a.add("dev-a", "x"));
  ASSERT_TRUE(b.add("dev-b", "x"));
  ASSERT_TRUE(a.add("dev-c", "x"));
  auto again = a.add("dev-b", "y");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, storage::ErrorCode::kAlreadyExists);
  ASSERT_TRUE(b.remove("dev-a"));
  ASSERT_TRUE(a.replace("dev-c", "z"));
  const std::string text = read_text(file_);
  EXPECT_EQ(entry_of(text, "dev-a"), "");
  EXPECT_NE(entry_of(text, "dev-b"), "");
  EXPECT_NE(entry_of(text, "dev-c"), "");
  EXPECT_NE(entry_of(text, "svc"), "");
  EXPECT_EQ(a.replace("dev-a", "x").error().code, storage::ErrorCode::kNotFound);
}

}  // namespace
