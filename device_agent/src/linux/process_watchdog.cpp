#include "tinyfleet/device_agent/linux/process_watchdog.h"

#include <fcntl.h>
#include <unistd.h>

namespace tinyfleet::device_agent::linux_port {

ProcessWatchdog::ProcessWatchdog(std::string dir, std::function<void()> reset)
    : marker_(std::move(dir) + "/watchdog-reset"), reset_(std::move(reset)) {
  thread_ = std::thread([this] { run(); });
}

ProcessWatchdog::~ProcessWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ProcessWatchdog::arm(uint32_t timeout_ms) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = true;
    deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  }
  cv_.notify_all();
}

void ProcessWatchdog::disarm() {
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = false;
}

bool ProcessWatchdog::caused_reset() { return ::unlink(marker_.c_str()) == 0; }

void ProcessWatchdog::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (!armed_) {
      cv_.wait(lock);
      continue;
    }
    if (cv_.wait_until(lock, deadline_) != std::cv_status::timeout || !armed_ ||
        std::chrono::steady_clock::now() < deadline_) {
      continue;  // disarmed, re-armed or stopped meanwhile
    }
    armed_ = false;
    const int fd = ::open(marker_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
    if (!reset_) ::_exit(kResetExitCode);  // the hung inference never returns: reset
    lock.unlock();
    reset_();
    lock.lock();
  }
}

}  // namespace tinyfleet::device_agent::linux_port
