#include "tinyfleet/testing/private_broker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/free_port.h"

namespace tinyfleet::testing {

namespace fs = std::filesystem;

namespace {

bool accepts(int port) {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool up = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(s);
  return up;
}

}  // namespace

PrivateBroker::PrivateBroker(bool persistence) {
  static int serial = 0;
  dir_ = fs::temp_directory_path() /
         ("tf-broker-" + std::to_string(getpid()) + "-" + std::to_string(serial++));
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  const fs::path passwd = require_env("TINYFLEET_MQTT_PASSWD_FILE");
  fs::copy_file(passwd, dir_ / "passwd");
  fs::copy_file(passwd.parent_path() / "acl", dir_ / "acl");
  port_ = free_loopback_port();
  std::ofstream conf(dir_ / "mosquitto.conf");
  conf << "per_listener_settings false\nlistener " << port_ << " 127.0.0.1\n"
       << "allow_anonymous false\npassword_file " << (dir_ / "passwd").string() << "\n"
       << "acl_file " << (dir_ / "acl").string() << "\n"
       << "max_inflight_messages 100\nmax_queued_messages 10000\n";
  if (persistence) {
    conf << "persistence true\npersistence_location " << dir_.string() << "/\n"
         << "autosave_interval 1\nautosave_on_changes false\n";
  } else {
    conf << "persistence false\n";
  }
  if (getuid() == 0) conf << "user root\n";
}

PrivateBroker::~PrivateBroker() {
  stop();
  fs::remove_all(dir_);
}

void PrivateBroker::start() {
  pid_ = fork();
  if (pid_ == 0) {
    std::freopen("/dev/null", "w", stderr);
    execlp("mosquitto", "mosquitto", "-c", (dir_ / "mosquitto.conf").c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < 100 && !accepts(port_); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void PrivateBroker::signal_and_wait(int sig) {
  if (pid_ <= 0) return;
  ::kill(pid_, sig);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void PrivateBroker::stop() { signal_and_wait(SIGTERM); }

void PrivateBroker::kill() { signal_and_wait(SIGKILL); }

}  // namespace tinyfleet::testing
