// NATS device accounts on a real nats-server (2.9, MQTT listener, JetStream), whose
// authorization block includes the file fleetd writes (nats.accounts_file): an account
// BrokerAccounts adds is accepted by an MQTT 3.1.1 CONNECT once the SIGHUP's reload is
// through, a wrong password is refused, and a removed account is refused. Also prints
// what a CONNECT costs the server by bcrypt cost (the figures in docs/scale.md).
#include <gtest/gtest.h>
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "tinyfleet/server/broker_accounts.h"
#include "tinyfleet/server/broker_password.h"
#include "tinyfleet/testing/free_port.h"
#include "tinyfleet/testing/nats_cluster.h"

namespace fs = std::filesystem;
using namespace tinyfleet;
using Clock = std::chrono::steady_clock;

namespace {

class NatsAccountsServer : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    dir_ = fs::temp_directory_path() / ("tf-nats-accounts-srv-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    mqtt_ = tinyfleet::testing::free_loopback_port();
    std::ofstream(dir_ / "accounts.conf")
        << "users = [\n  { user: \"fleetd\", password: \"fleetd-pw\" }\n]\n";
    std::ofstream(dir_ / "nats.conf")
        << "server_name: a1\nlisten: 127.0.0.1:" << tinyfleet::testing::free_loopback_port() << "\n"
        << "log_file: \"" << (dir_ / "log").string() << "\"\n"
        << "jetstream { store_dir: \"" << (dir_ / "js").string()
        << "\", max_memory_store: 64MB, max_file_store: 256MB }\n"
        << "mqtt { listen: 127.0.0.1:" << mqtt_ << " }\n"
        << "authorization { timeout: 10\n  include \"accounts.conf\"\n}\n";
    pid_ = fork();
    if (pid_ == 0) {
      std::freopen("/dev/null", "w", stdout);
      std::freopen("/dev/null", "w", stderr);
      execlp("nats-server", "nats-server", "-c", (dir_ / "nats.conf").c_str(), nullptr);
      _exit(127);
    }
    ASSERT_GT(pid_, 0);
    ASSERT_TRUE(eventually(true, "fleetd", "fleetd-pw", 30)) << log();
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }
  bool accepts(const std::string& user, const std::string& password) const {
    return tinyfleet::testing::mqtt311_accepts(mqtt_, user, password, "probe-" + user);
  }
  // True once a CONNECT's answer is `want`, within `seconds`.
  bool eventually(bool want, const std::string& user, const std::string& password,
                  int seconds) const {
    const auto deadline = Clock::now() + std::chrono::seconds(seconds);
    while (accepts(user, password) != want) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }
  std::string log() const {
    std::ifstream in(dir_ / "log");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  fs::path dir_;
  int mqtt_ = 0;
  pid_t pid_ = -1;
};

TEST_F(NatsAccountsServer, AnAddedAccountConnectsAWrongOrRemovedOneDoesNot) {
  server::BrokerAccounts accounts(server::AccountFormat::kNats, (dir_ / "accounts.conf").string(),
                                  {pid_}, {"fleetd"});
  const std::string pw = "abcdefghijklmnopqrstuvwx";
  EXPECT_FALSE(accepts("dev-1", pw));
  const auto t0 = Clock::now();
  ASSERT_TRUE(accounts.add("dev-1", pw, "default"));
  ASSERT_TRUE(eventually(true, "dev-1", pw, 10)) << log();
  std::printf("accepted %.0f ms after add()\n",
              std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  EXPECT_FALSE(accepts("dev-1", pw.substr(1) + "y"));
  EXPECT_FALSE(accepts("dev-1", ""));
  EXPECT_TRUE(accepts("fleetd", "fleetd-pw"));  // the operator's line still works
  ASSERT_TRUE(accounts.remove("dev-1"));
  EXPECT_TRUE(eventually(false, "dev-1", pw, 10)) << log();
  EXPECT_TRUE(accepts("fleetd", "fleetd-pw"));
}

// The time of one CONNECT+CONNACK+DISCONNECT for an account by bcrypt cost (and one with
// a plain-text password, what the server costs besides the hash), medians of 15.
TEST_F(NatsAccountsServer, ConnectTimeByBcryptCost) {
  const std::string pw = "abcdefghijklmnopqrstuvwx";
  const std::vector<int> costs = {4, 5, 6, 8, 10};
  {
    std::ofstream out(dir_ / "accounts.conf");
    out << "users = [\n  { user: \"fleetd\", password: \"fleetd-pw\" }\n"
        << "  { user: \"plain\", password: \"" << pw << "\" }\n";
    for (int c : costs) {
      out << "  { user: \"c" << c << "\", password: \"" << server::nats_password_hash(pw, c)
          << "\" }\n";
    }
    out << "]\n";
  }
  kill(pid_, SIGHUP);
  ASSERT_TRUE(eventually(true, "c" + std::to_string(costs.back()), pw, 10)) << log();
  const auto median_ms = [&](const std::string& user) {
    std::vector<double> ms;
    for (int i = 0; i < 15; ++i) {
      const auto t0 = Clock::now();
      EXPECT_TRUE(accepts(user, pw)) << user;
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  };
  std::printf("MQTT CONNECT, plain-text password: %.2f ms\n", median_ms("plain"));
  for (int c : costs) {
    std::printf("MQTT CONNECT, bcrypt cost %d: %.2f ms\n", c, median_ms("c" + std::to_string(c)));
  }
}

// What a reload costs with clients connected (nats-server checks the password of every
// connected client again): the time from SIGHUP until an account added with it is
// accepted, with none and with kClients connected, their passwords bcrypt of cost 4,
// then 8.
TEST_F(NatsAccountsServer, ReloadTimeWithConnectedClients) {
  constexpr int kClients = 100;
  const std::string pw = "abcdefghijklmnopqrstuvwx";
  for (int cost : {4, 8}) {
    const std::string c = std::to_string(cost);
    std::string entries = "  { user: \"fleetd\", password: \"fleetd-pw\" }\n";
    for (int i = 0; i < kClients; ++i) {
      entries += "  { user: \"k" + c + "-" + std::to_string(i) + "\", password: \"" +
                 server::nats_password_hash(pw, cost) + "\" }\n";
    }
    const auto reload_ms = [&](const std::string& added) {
      std::ofstream(dir_ / "accounts.conf")
          << "users = [\n"
          << entries << "  { user: \"" << added << "\", password: \"" << pw << "\" }\n]\n";
      const auto t0 = Clock::now();
      kill(pid_, SIGHUP);
      bool accepted = false;
      while (!(accepted = accepts(added, pw)) && Clock::now() - t0 < std::chrono::seconds(60)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      EXPECT_TRUE(accepted) << added << " was not accepted within 60 s of the reload";
      return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    };
    const double idle = reload_ms("idle" + c);
    std::vector<int> sockets;
    for (int i = 0; i < kClients; ++i) {
      const std::string user = "k" + c + "-" + std::to_string(i);
      sockets.push_back(tinyfleet::testing::mqtt311_connect(mqtt_, user, pw, "s-" + user, 120));
      EXPECT_GE(sockets.back(), 0) << user;
    }
    const double busy = reload_ms("busy" + c);
    std::printf(
        "reload, bcrypt cost %d: new account accepted %.0f ms after SIGHUP with no "
        "client connected, %.0f ms with %d\n",
        cost, idle, busy, kClients);
    for (int fd : sockets) {
      if (fd >= 0) close(fd);
    }
  }
}

}  // namespace
