#include "fleetd_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

namespace tinyfleet::testing {

FleetdProcess::FleetdProcess(const std::string& database_uri, const std::string& admin_token,
                             std::map<std::string, std::string> settings)
    : database_uri_(database_uri), admin_token_(admin_token), settings_(std::move(settings)) {
  char tmpl[] = "/tmp/fleetd-test.XXXXXX";
  dir_ = mkdtemp(tmpl);
}

FleetdProcess::~FleetdProcess() {
  kill_hard();
  std::error_code ec;
  std::remove((dir_ + "/port").c_str());
  std::remove((dir_ + "/fleetd.log").c_str());
  rmdir(dir_.c_str());
}

void FleetdProcess::start() {
  const std::string port_file = dir_ + "/port";
  std::remove(port_file.c_str());
  std::vector<std::string> args = {
      TINYFLEET_FLEETD_PATH,         "--listen=127.0.0.1:0",
      "--port_file=" + port_file,    "--database.uri=" + database_uri_,
      "--database.pool=4",           "--bootstrap_admin_token=" + admin_token_,
      "--shutdown_grace_seconds=5",  "--metrics.listen=127.0.0.1:0",
      "--console.listen=127.0.0.1:0"};
  for (const auto& [k, v] : settings_) args.push_back("--" + k + "=" + v);
  const std::string log_path = dir_ + "/fleetd.log";
  pid_ = fork();
  ASSERT_GE(pid_, 0);
  if (pid_ == 0) {
    std::freopen(log_path.c_str(), "a", stderr);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(port_file);
    if (in >> port_ && port_ > 0) return;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL() << "fleetd exited during start:\n" << log();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL() << "fleetd did not start within 60 s:\n" << log();
}

int FleetdProcess::metrics_port() const { return serving_port("metrics.serving"); }
int FleetdProcess::console_port() const { return serving_port("console.serving"); }

int FleetdProcess::serving_port(const std::string& event) const {
  // The last such line (a restarted fleetd appends to the same log).
  const std::string text = log();
  const auto at = text.rfind("\"event\":\"" + event + "\"");
  if (at == std::string::npos) return 0;
  const auto line_start = text.rfind('\n', at);
  const auto line_end = text.find('\n', at);
  const auto line =
      text.substr(line_start == std::string::npos ? 0 : line_start + 1,
                  line_end == std::string::npos ? std::string::npos : line_end - line_start - 1);
  const auto p = line.find("\"port\":");
  return p == std::string::npos ? 0 : std::atoi(line.c_str() + p + 7);
}

std::string FleetdProcess::scrape_metrics() const { return http_get(metrics_port(), "/metrics"); }

std::string http_get(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[8192];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, n);
    }
  }
  ::close(fd);
  const auto body = out.find("\r\n\r\n");
  return body == std::string::npos ? "" : out.substr(body + 4);
}

void FleetdProcess::kill_hard() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

int FleetdProcess::terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string FleetdProcess::log() const {
  std::ifstream in(dir_ + "/fleetd.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::shared_ptr<grpc::Channel> FleetdProcess::channel() const {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                             grpc::InsecureChannelCredentials());
}

std::unique_ptr<grpc::ClientContext> context_with_token(const std::string& token) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return ctx;
}

CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.exit = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

pid_t spawn_with_stdout(const std::vector<std::string>& argv, const std::string& stdout_path,
                        int nice) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid == 0) {
    std::freopen(stdout_path.c_str(), "w", stdout);
    if (nice > 0 && setpriority(PRIO_PROCESS, 0, nice) != 0) _exit(126);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

}  // namespace tinyfleet::testing
