#include "tinyfleet/testing/nats_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "tinyfleet/testing/free_port.h"

namespace tinyfleet::testing {

namespace fs = std::filesystem;

namespace {

void put_string(std::string* out, const std::string& s) {
  out->push_back(static_cast<char>(s.size() >> 8));
  out->push_back(static_cast<char>(s.size() & 0xff));
  *out += s;
}

// A JSON-ish quoted string for the server's configuration (accounts are test-made).
std::string quoted(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

NatsCluster::NatsCluster(std::string server_user, std::string server_password)
    : user_(std::move(server_user)), password_(std::move(server_password)) {
  static int serial = 0;
  dir_ = fs::temp_directory_path() /
         ("tf-nats-" + std::to_string(getpid()) + "-" + std::to_string(serial++));
  fs::remove_all(dir_);
  for (auto& n : nodes_) {
    n.client = free_loopback_port();
    n.route = free_loopback_port();
    n.mqtt = free_loopback_port();
  }
  for (int i = 0; i < kNodes; ++i) fs::create_directories(dir_ / ("n" + std::to_string(i)));
}

NatsCluster::~NatsCluster() {
  stop();
  fs::remove_all(dir_);
}

std::string NatsCluster::nats_servers() const {
  std::string out;
  for (const auto& n : nodes_) {
    out += (out.empty() ? "" : ",") + std::string("nats://127.0.0.1:") + std::to_string(n.client);
  }
  return out;
}

std::string NatsCluster::log(int node) const {
  std::ifstream in(dir_ / ("n" + std::to_string(node)) / "log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void NatsCluster::write_config(int node) const {
  const fs::path d = dir_ / ("n" + std::to_string(node));
  std::ofstream c(d / "nats.conf.tmp");
  c << "server_name: n" << node << "\nlisten: 127.0.0.1:" << nodes_[node].client << "\n"
    << "log_file: " << quoted((d / "log").string()) << "\n"
    << "jetstream { store_dir: " << quoted((d / "js").string())
    << ", max_memory_store: 64MB, max_file_store: 1GB }\n"
    << "cluster { name: tinyfleet, listen: 127.0.0.1:" << nodes_[node].route << ", routes: [";
  const char* sep = " ";
  for (int i = 0; i < kNodes; ++i) {
    if (i == node) continue;
    c << sep << "nats-route://127.0.0.1:" << nodes_[i].route;
    sep = ", ";
  }
  c << " ] }\n"
    << "mqtt { listen: 127.0.0.1:" << nodes_[node].mqtt
    << ", stream_replicas: 3 }\n"
    // A CONNECT waits behind another client's JetStream session lookup (about 2 s here):
    // the default 2 s would drop it as "Authentication Timeout".
    // nats-server resolves an include against the including file's folder.
    << "authorization { timeout: 10\n  include \"../accounts.conf\"\n}\n";
  c.close();
  fs::rename(d / "nats.conf.tmp", d / "nats.conf");
}

void NatsCluster::write_accounts() const {
  std::ofstream c(dir_ / "accounts.conf.tmp");
  c << "# fleetd's own account, written by the operator (the test)\nusers = [\n"
    << "  { user: " << quoted(user_) << ", password: " << quoted(password_) << " }\n";
  const std::string base = "tinyfleet.v1." + fleet_ + ".";
  for (const auto& [id, pw] : devices_) {
    const std::string own = base + id + ".";
    c << "  { user: " << quoted(id) << ", password: " << quoted(pw) << ", permissions: { publish: ["
      << quoted(own + "chunk.req") << ", " << quoted(own + "status") << ", "
      << quoted(own + "telemetry") << ", " << quoted(own + "presence")
      << ", \"$MQTT.>\"], subscribe: [" << quoted(own + "offer") << ", " << quoted(own + "chunk")
      << ", " << quoted(own + "presence") << ", \"$MQTT.>\"] } }\n";
  }
  c << "]\n";
  c.close();
  fs::rename(dir_ / "accounts.conf.tmp", accounts_file());
}

bool NatsCluster::launch(int node) {
  const fs::path d = dir_ / ("n" + std::to_string(node));
  write_config(node);
  const pid_t pid = fork();
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    std::freopen("/dev/null", "w", stderr);
    execlp("nats-server", "nats-server", "-c", (d / "nats.conf").c_str(), nullptr);
    _exit(127);
  }
  nodes_[node].pid = pid;
  return pid > 0;
}

bool NatsCluster::mqtt_accepts(int node, const std::string& user,
                               const std::string& password) const {
  return mqtt311_accepts(nodes_[node].mqtt, user, password,
                         "probe-" + std::to_string(getpid()) + "-" + std::to_string(node));
}

bool NatsCluster::accepted_everywhere(const std::string& user, const std::string& password,
                                      int seconds) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  for (int i = 0; i < kNodes; ++i) {
    if (nodes_[i].pid <= 0) continue;
    while (!mqtt_accepts(i, user, password)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  return true;
}

int mqtt311_connect(int port, const std::string& user, const std::string& password,
                    const std::string& client_id, int keepalive_seconds) {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    // MQTT 3.1.1 CONNECT: clean session, user name and password; CONNACK code 0 is yes.
    std::string body;
    put_string(&body, "MQTT");
    body += '\x04';
    body += static_cast<char>(0xc2);
    body += static_cast<char>((keepalive_seconds >> 8) & 0xff);
    body += static_cast<char>(keepalive_seconds & 0xff);
    put_string(&body, client_id);
    put_string(&body, user);
    put_string(&body, password);
    std::string packet(1, '\x10');
    for (size_t n = body.size();;) {  // remaining length, base 128
      const char b = static_cast<char>(n & 0x7f);
      n >>= 7;
      packet += static_cast<char>(b | (n ? 0x80 : 0));
      if (!n) break;
    }
    packet += body;
    unsigned char ack[4] = {0};
    ok = ::send(s, packet.data(), packet.size(), MSG_NOSIGNAL) ==
             static_cast<ssize_t>(packet.size()) &&
         ::recv(s, ack, sizeof ack, MSG_WAITALL) == 4 && ack[0] == 0x20 && ack[3] == 0;
  }
  if (!ok) {
    ::close(s);
    return -1;
  }
  return s;
}

bool mqtt311_accepts(int port, const std::string& user, const std::string& password,
                     const std::string& client_id) {
  const int s = mqtt311_connect(port, user, password, client_id, 10);
  if (s < 0) return false;
  ::send(s, "\xe0\x00", 2, MSG_NOSIGNAL);  // DISCONNECT
  ::close(s);
  return true;
}

bool NatsCluster::start() {
  write_accounts();
  for (int i = 0; i < kNodes; ++i) {
    if (!launch(i)) return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (int i = 0; i < kNodes; ++i) {
    while (!mqtt_accepts(i, user_, password_)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  return true;
}

bool NatsCluster::set_devices(const std::vector<std::pair<std::string, std::string>>& devices,
                              const std::string& fleet) {
  devices_ = devices;
  fleet_ = fleet;
  write_accounts();
  for (int i = 0; i < kNodes; ++i) {
    if (nodes_[i].pid > 0) ::kill(nodes_[i].pid, SIGHUP);
  }
  if (devices_.empty()) return true;
  return accepted_everywhere(devices_.back().first, devices_.back().second, 30);
}

void NatsCluster::kill(int node) {
  if (nodes_[node].pid <= 0) return;
  ::kill(nodes_[node].pid, SIGKILL);
  ::waitpid(nodes_[node].pid, nullptr, 0);
  nodes_[node].pid = -1;
}

bool NatsCluster::restart(int node) {
  if (nodes_[node].pid > 0 || !launch(node)) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!mqtt_accepts(node, user_, password_)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return true;
}

void NatsCluster::stop() {
  for (auto& n : nodes_) {
    if (n.pid > 0) ::kill(n.pid, SIGTERM);
  }
  for (auto& n : nodes_) {
    if (n.pid > 0) ::waitpid(n.pid, nullptr, 0);
    n.pid = -1;
  }
}

}  // namespace tinyfleet::testing
