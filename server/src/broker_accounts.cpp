#include "tinyfleet/server/broker_accounts.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "tinyfleet/server/broker_password.h"

namespace tinyfleet::server {

namespace {
using storage::Error;
using storage::ErrorCode;

Error io_error(const std::string& what, const std::string& path) {
  return Error{ErrorCode::kUnavailable, what + " " + path + ": " + std::strerror(errno)};
}

// The entry's user name: what precedes the first ':' (empty for blank lines/comments).
std::string entry_user(const std::string& line) {
  if (line.empty() || line[0] == '#') return "";
  const auto colon = line.find(':');
  return colon == std::string::npos ? "" : line.substr(0, colon);
}

storage::Expected<std::vector<std::string>> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return io_error("cannot read broker password file", path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  if (in.bad()) return io_error("cannot read broker password file", path);
  return lines;
}

// Writes `content` to `path` so that a crash leaves either the old or the new file:
// a temporary file in the same folder, fsynced, renamed over `path`, then the folder
// fsynced so the rename itself is on disk.
storage::Expected<storage::Done> write_durably(const std::string& path,
                                               const std::string& content) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("cannot create", tmp);
  size_t off = 0;
  while (off < content.size()) {
    const ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto e = io_error("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return e;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    auto e = io_error("cannot fsync", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto e = io_error("cannot replace", path);
    ::unlink(tmp.c_str());
    return e;
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return io_error("cannot open folder", dir);
  const int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0) return io_error("cannot fsync folder", dir);
  return storage::Done{};
}
}  // namespace

BrokerAccounts::BrokerAccounts(std::string passwd_file, int broker_pid,
                               std::vector<std::string> reserved)
    : passwd_file_(std::move(passwd_file)), broker_pid_(broker_pid) {
  for (auto& r : reserved) {
    if (!r.empty()) reserved_.insert(std::move(r));
  }
}

const std::set<std::string>& BrokerAccounts::reserved_names() {
  // The server account the shipped ACL names, and names MQTT or Mosquitto give meaning.
  static const std::set<std::string> kNames{"fleetd", "admin", "root", "mosquitto", "$SYS"};
  return kNames;
}

bool BrokerAccounts::reserved(const std::string& username) const {
  return reserved_names().count(username) > 0 || reserved_.count(username) > 0;
}

storage::Expected<storage::Done> BrokerAccounts::add(const std::string& username,
                                                     const std::string& password) {
  return edit(Op::kAdd, username, password);
}

storage::Expected<storage::Done> BrokerAccounts::replace(const std::string& username,
                                                         const std::string& password) {
  return edit(Op::kReplace, username, password);
}

storage::Expected<storage::Done> BrokerAccounts::remove(const std::string& username) {
  return edit(Op::kRemove, username, "");
}

storage::Expected<storage::Done> BrokerAccounts::edit(Op op, const std::string& username,
                                                      const std::string& password) {
  if (!configured()) {
    return Error{ErrorCode::kFailedPrecondition,
                 "fleetd has no broker password file configured (mqtt.passwd_file)"};
  }
  if (username.empty() || username.find_first_of(":\n\r#") != std::string::npos) {
    return Error{ErrorCode::kInvalidArgument, "'" + username + "' is not a broker account name"};
  }
  if (reserved(username)) {
    return Error{ErrorCode::kFailedPrecondition,
                 "broker account '" + username + "' is reserved (not a device account)"};
  }
  if (auto alive = check_broker(); !alive) return alive.error();
  // The hash (PBKDF2) is computed by each caller, outside any lock.
  const Edit e{op, username,
               op == Op::kRemove ? "" : username + ":" + mosquitto_password_hash(password)};
  std::unique_lock<std::mutex> lock(mu_);
  queue_.push_back(&e);
  for (;;) {
    if (auto it = results_.find(&e); it != results_.end()) {
      Result r = std::move(it->second);
      results_.erase(it);
      return r;
    }
    if (writing_) {
      written_.wait(lock);
      continue;
    }
    // No write in progress: this caller writes for everyone queued.
    writing_ = true;
    std::vector<const Edit*> batch;
    batch.swap(queue_);
    lock.unlock();
    std::vector<Result> out = commit(batch);
    lock.lock();
    for (size_t i = 0; i < batch.size(); ++i) results_.emplace(batch[i], std::move(out[i]));
    writing_ = false;
    written_.notify_all();
  }
}

std::optional<BrokerAccounts::FileId> BrokerAccounts::file_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileId{static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
                static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

size_t BrokerAccounts::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

BrokerAccounts::Result BrokerAccounts::load_if_changed() {
  const auto now = file_id(passwd_file_);
  if (!now) {
    loaded_ = false;
    return io_error("cannot read broker password file", passwd_file_);
  }
  if (loaded_ && *now == file_id_) return storage::Done{};
  auto lines = read_lines(passwd_file_);
  if (!lines) {
    loaded_ = false;
    return lines.error();
  }
  lines_ = std::move(*lines);
  index_.clear();
  for (size_t i = 0; i < lines_.size(); ++i) {
    if (auto u = entry_user(lines_[i]); !u.empty()) index_.emplace(std::move(u), i);
  }
  file_id_ = *now;
  loaded_ = true;
  return storage::Done{};
}

BrokerAccounts::Result BrokerAccounts::apply(const Edit& e) {
  const auto it = index_.find(e.user);
  const bool present = it != index_.end();
  switch (e.op) {
    case Op::kAdd:
      if (present) {
        return Error{ErrorCode::kAlreadyExists,
                     "broker account '" + e.user +
                         "' already exists and is not a device; it is not provisioned"};
      }
      index_.emplace(e.user, lines_.size());
      lines_.push_back(e.line);
      break;
    case Op::kReplace:
      if (!present) {
        return Error{ErrorCode::kNotFound, "broker account '" + e.user + "' does not exist"};
      }
      lines_[it->second] = e.line;
      break;
    case Op::kRemove:
      if (!present) break;
      lines_.erase(lines_.begin() + static_cast<std::ptrdiff_t>(it->second));
      index_.clear();  // removals are rare: re-index
      for (size_t i = 0; i < lines_.size(); ++i) {
        if (auto u = entry_user(lines_[i]); !u.empty()) index_.emplace(std::move(u), i);
      }
      break;
  }
  return storage::Done{};
}

std::vector<BrokerAccounts::Result> BrokerAccounts::commit(const std::vector<const Edit*>& batch) {
  const auto all = [&](const Result& r) { return std::vector<Result>(batch.size(), r); };
  // Other processes (another fleetd replica) may edit the same file: lock across them.
  const int lock_fd = ::open((passwd_file_ + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0) {
    auto e = io_error("cannot lock", passwd_file_ + ".lock");
    if (lock_fd >= 0) ::close(lock_fd);
    return all(e);
  }
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }  // closing releases the flock
  } unlock{lock_fd};
  if (auto loaded = load_if_changed(); !loaded) return all(loaded);
  std::vector<Result> out;
  out.reserve(batch.size());
  bool changed = false;
  for (const Edit* e : batch) {
    const size_t before = lines_.size();
    out.push_back(apply(*e));
    changed = changed || (out.back() && (e->op == Op::kReplace || lines_.size() != before));
  }
  if (!changed) return out;
  std::string content;
  size_t bytes = 0;
  for (const auto& l : lines_) bytes += l.size() + 1;
  content.reserve(bytes);
  for (const auto& l : lines_) content.append(l).push_back('\n');
  if (auto w = write_durably(passwd_file_, content); !w) {
    loaded_ = false;  // the lines hold edits the file does not: read it again next time
    for (auto& r : out) {
      if (r) r = w.error();
    }
    return out;
  }
  ++writes_;
  // The file is now what is in memory: remember which one it is.
  const auto id = file_id(passwd_file_);
  loaded_ = id.has_value();
  if (id) file_id_ = *id;
  schedule_reload();
  return out;
}

storage::Expected<storage::Done> BrokerAccounts::check_broker() const {
  if (broker_pid_ > 0 && kill(broker_pid_, 0) != 0 && errno == ESRCH) {
    return Error{ErrorCode::kUnavailable, "the broker (pid " + std::to_string(broker_pid_) +
                                              ", mqtt.pid) is not running: it cannot reload "
                                              "its password file"};
  }
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
  const auto now = std::chrono::steady_clock::now();
  last_change_ = now;
  if (owed_ == 0 && now - last_sent_ >= kMinGap) {
    kill(broker_pid_, SIGHUP);  // idle: this change reloads at once
    last_sent_ = now;
    owed_ = 1;  // the trailing one
  } else {
    owed_ = 2;
  }
  if (!reloader_.joinable()) reloader_ = std::thread([this] { reload_loop(); });
  reload_cv_.notify_all();
}

void BrokerAccounts::reload_loop() {
  std::unique_lock<std::mutex> lock(reload_mu_);
  // On stop, a reload still owed is sent at once rather than dropped.
  while (!stopping_ || owed_ > 0) {
    if (stopping_) {
      owed_ = 0;
      kill(broker_pid_, SIGHUP);
      break;
    }
    if (owed_ == 0) {
      reload_cv_.wait(lock);
      continue;
    }
    // The prompt SIGHUP waits only for the gap; the trailing one also for quiet.
    auto due = last_sent_ + kMinGap;
    if (owed_ == 1) due = std::max(due, last_change_ + kSettle);
    if (reload_cv_.wait_until(lock, due) == std::cv_status::timeout &&
        std::chrono::steady_clock::now() >= due) {
      --owed_;
      last_sent_ = std::chrono::steady_clock::now();
      kill(broker_pid_, SIGHUP);
    }
  }
}

}  // namespace tinyfleet::server
