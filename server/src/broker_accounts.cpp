#include "tinyfleet/server/broker_accounts.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace tinyfleet::server {

namespace {
using storage::Error;
using storage::ErrorCode;

// Runs mosquitto_passwd without a shell (the password never appears in a command line
// a shell parses; it is still in argv, which only root and the owner can read).
int run_mosquitto_passwd(const std::string& file, const std::string& user,
                         const std::string& password) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    std::freopen("/dev/null", "w", stdout);
    execlp("mosquitto_passwd", "mosquitto_passwd", "-b", file.c_str(), user.c_str(),
           password.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
}  // namespace

storage::Expected<storage::Done> BrokerAccounts::add(const std::string& username,
                                                     const std::string& password) {
  if (!configured()) {
    return Error{ErrorCode::kFailedPrecondition,
                 "fleetd has no broker password file configured (mqtt.passwd_file)"};
  }
  std::lock_guard<std::mutex> lock(mu_);
  // Other processes (another fleetd replica) may edit the same file: lock across them.
  const int lock_fd = ::open((passwd_file_ + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0) {
    if (lock_fd >= 0) ::close(lock_fd);
    return Error{ErrorCode::kUnavailable,
                 "cannot lock " + passwd_file_ + ".lock: " + std::strerror(errno)};
  }
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }  // closing releases the flock
  } unlock{lock_fd};
  namespace fs = std::filesystem;
  const std::string tmp = passwd_file_ + ".tmp";
  std::error_code ec;
  fs::copy_file(passwd_file_, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    return Error{ErrorCode::kUnavailable,
                 "cannot copy broker password file " + passwd_file_ + ": " + ec.message()};
  }
  const int rc = run_mosquitto_passwd(tmp, username, password);
  if (rc != 0) {
    fs::remove(tmp, ec);
    return Error{ErrorCode::kUnavailable,
                 "mosquitto_passwd failed (exit " + std::to_string(rc) + ") for " + username};
  }
  fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write, ec);
  fs::rename(tmp, passwd_file_, ec);
  if (ec) {
    return Error{ErrorCode::kUnavailable,
                 "cannot replace broker password file " + passwd_file_ + ": " + ec.message()};
  }
  if (broker_pid_ > 0 && kill(broker_pid_, SIGHUP) != 0) {
    return Error{ErrorCode::kUnavailable, "cannot signal the broker (pid " +
                                              std::to_string(broker_pid_) +
                                              ") to reload: " + std::strerror(errno)};
  }
  schedule_reload();
  return storage::Done{};
}

BrokerAccounts::~BrokerAccounts() {
  {
    std::lock_guard<std::mutex> lock(reload_mu_);
    stopping_ = true;
  }
  reload_cv_.notify_all();
  if (reloader_.joinable()) reloader_.join();
}

void BrokerAccounts::schedule_reload() {
  if (broker_pid_ <= 0) return;
  std::lock_guard<std::mutex> lock(reload_mu_);
  reload_pending_ = true;
  reload_at_ = std::chrono::steady_clock::now() + kSettle;
  if (!reloader_.joinable()) reloader_ = std::thread([this] { reload_loop(); });
  reload_cv_.notify_all();
}

void BrokerAccounts::reload_loop() {
  std::unique_lock<std::mutex> lock(reload_mu_);
  // On stop, a reload still pending is sent at once rather than dropped.
  while (!stopping_ || reload_pending_) {
    if (stopping_) {
      reload_pending_ = false;
      kill(broker_pid_, SIGHUP);
      break;
    }
    if (!reload_pending_) {
      reload_cv_.wait(lock);
      continue;
    }
    if (reload_cv_.wait_until(lock, reload_at_) == std::cv_status::timeout &&
        std::chrono::steady_clock::now() >= reload_at_) {
      reload_pending_ = false;
      kill(broker_pid_, SIGHUP);
    }
  }
}

}  // namespace tinyfleet::server
