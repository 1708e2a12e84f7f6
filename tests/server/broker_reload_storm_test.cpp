// Provisioning thousands of devices back to back keeps a real Mosquitto up and serving:
// fleetd coalesces password-file reloads (BrokerAccounts::kMinGap) instead of sending a
// SIGHUP per account, which stalled the broker (each reload re-checks every connected
// session; docs/scale.md). Runs its own broker, so it needs no stack and shares nothing.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "tinyfleet/server/broker_accounts.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using tinyfleet::server::BrokerAccounts;

namespace {

int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A private Mosquitto on a free loopback port with a password file, logging reloads.
class Broker {
 public:
  explicit Broker(const fs::path& dir) : dir_(dir), port_(free_port()) {
    std::ofstream(passwd()).close();
    std::ofstream conf(dir_ / "mosquitto.conf");
    conf << "per_listener_settings false\nlistener " << port_ << " 127.0.0.1\n"
         << "allow_anonymous false\npassword_file " << passwd().string() << "\n"
         << "log_dest file " << log().string() << "\nlog_type error\nlog_type warning\n"
         << "log_type notice\nlog_type information\n"
         << (getuid() == 0 ? "user root\n" : "");
    conf.close();
    pid_ = fork();
    if (pid_ == 0) {
      execlp("mosquitto", "mosquitto", "-c", (dir_ / "mosquitto.conf").c_str(), nullptr);
      _exit(127);
    }
  }
  ~Broker() {
    if (alive()) kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  fs::path passwd() const { return dir_ / "passwd"; }
  fs::path log() const { return dir_ / "mosquitto.log"; }
  pid_t pid() const { return pid_; }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  bool alive() {
    if (exited_) return false;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) exited_ = true;
    return !exited_;
  }
  bool listening() { return count_of(read_text(log()), "running") > 0; }

 private:
  fs::path dir_;
  int port_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

mqtt::connect_options options(const std::string& user, const std::string& password) {
  return mqtt::connect_options_builder()
      .mqtt_version(MQTTVERSION_5)
      .clean_start(true)
      .user_name(user)
      .password(password)
      .connect_timeout(5s)
      .finalize();
}

// Connects every (user, password) at once (one connection at a time takes paho about a
// second), retrying those refused for up to 5 s; the clients, null where never accepted.
std::vector<std::unique_ptr<mqtt::async_client>> connect_all(
    const Broker& b, const std::vector<std::pair<std::string, std::string>>& accounts) {
  std::vector<std::unique_ptr<mqtt::async_client>> clients(accounts.size());
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::vector<std::pair<size_t, mqtt::token_ptr>> tries;
    for (size_t i = 0; i < accounts.size(); ++i) {
      if (clients[i] && clients[i]->is_connected()) continue;
      clients[i] = std::make_unique<mqtt::async_client>(b.uri(), accounts[i].first,
                                                        mqtt::create_options(MQTTVERSION_5));
      tries.emplace_back(i, clients[i]->connect(options(accounts[i].first, accounts[i].second)));
    }
    if (tries.empty()) break;
    for (auto& [i, token] : tries) {
      try {
        token->wait();
      } catch (const mqtt::exception&) {
      }
    }
    std::this_thread::sleep_for(100ms);
  }
  for (auto& c : clients) {
    if (c && !c->is_connected()) c.reset();
  }
  return clients;
}

TEST(BrokerReloadStorm, ThousandsOfAccountsBackToBackKeepTheBrokerServing) {
  ASSERT_GE(sodium_init(), 0);
  // On tmpfs where there is one: each add fsyncs the file and its folder, and a disk's
  // fsync (about 25 ms each on the CI box) is not what this tests.
  const fs::path base =
      fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  const fs::path dir = base / ("tf-storm-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    Broker broker(dir);
    for (int i = 0; i < 100 && !broker.listening(); ++i) std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(broker.alive()) << read_text(broker.log());
    BrokerAccounts accounts(broker.passwd().string(), broker.pid());
    // Sessions connected throughout, as devices are while more are provisioned.
    constexpr int kConnected = 50, kAccounts = 3000;
    std::vector<std::pair<std::string, std::string>> early;
    for (int i = 0; i < kConnected; ++i) {
      early.emplace_back("early-" + std::to_string(i), "pw-early");
      ASSERT_TRUE(accounts.add(early.back().first, early.back().second));
    }
    auto sessions = connect_all(broker, early);
    for (int i = 0; i < kConnected; ++i) ASSERT_TRUE(sessions[i]) << early[i].first << " refused";
    const int reloads_before = count_of(read_text(broker.log()), "Reloading config");
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kAccounts; ++i) {
      ASSERT_TRUE(accounts.add("dev-" + std::to_string(i), "pw-" + std::to_string(i)));
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(broker.alive()) << read_text(broker.log());
    // The last account provisioned is accepted once the coalesced reload lands.
    const std::string last = "dev-" + std::to_string(kAccounts - 1);
    auto late = connect_all(broker, {{last, "pw-" + std::to_string(kAccounts - 1)}});
    EXPECT_TRUE(late[0]) << last << " never accepted";
    mqtt::async_client wrong(broker.uri(), last + "-wrong", mqtt::create_options(MQTTVERSION_5));
    EXPECT_THROW(wrong.connect(options(last, "wrong"))->wait(), mqtt::exception)
        << "a wrong password was accepted";
    for (auto& s : sessions) EXPECT_TRUE(s->is_connected());
    EXPECT_TRUE(broker.alive()) << read_text(broker.log());
    // At most one SIGHUP per kMinGap during the burst, plus the trailing ones (a SIGHUP
    // per account would be 3,000 or more).
    const int reloads = count_of(read_text(broker.log()), "Reloading config") - reloads_before;
    const double gap = std::chrono::duration<double>(BrokerAccounts::kMinGap).count();
    EXPECT_GE(reloads, 1);
    EXPECT_LE(reloads, static_cast<int>(seconds / gap) + 3)
        << kAccounts << " accounts in " << seconds << " s";
    for (auto& s : sessions) s->disconnect()->wait();
    if (late[0]) late[0]->disconnect()->wait();
  }
  fs::remove_all(dir);
}

}  // namespace
