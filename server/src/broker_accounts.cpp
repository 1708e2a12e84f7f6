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
#include "tinyfleet/server/nats_accounts.h"

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

storage::Expected<std::vector<std::string>> read_lines(const std::string& path,
                                                       const std::string& what) {
  std::ifstream in(path);
  if (!in) return io_error("cannot read " + what, path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  if (in.bad()) return io_error("cannot read " + what, path);
  return lines;
}

// What a NATS entry's names (user, fleet) must not hold: they go into quoted strings and
// subjects, and none of these may end or widen them.
constexpr const char* kNotInNatsNames = ":\n\r#\"'\\ \t{}[],*>/+";

std::string pid_list(const std::vector<int>& pids) {
  std::string out;
  for (int p : pids) out += (out.empty() ? "" : ", ") + std::to_string(p);
  return out;
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
    : BrokerAccounts(AccountFormat::kMosquitto, std::move(passwd_file),
                     broker_pid > 0 ? std::vector<int>{broker_pid} : std::vector<int>{},
                     std::move(reserved)) {}

BrokerAccounts::BrokerAccounts(AccountFormat format, std::string file, std::vector<int> pids,
                               std::vector<std::string> reserved)
    : format_(format), passwd_file_(std::move(file)) {
  for (int p : pids) {
    if (p > 0) pids_.push_back(p);
  }
  for (auto& r : reserved) {
    if (!r.empty()) reserved_.insert(std::move(r));
  }
}

std::string BrokerAccounts::what() const {
  return format_ == AccountFormat::kNats ? "NATS accounts file" : "broker password file";
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
                                                     const std::string& password,
                                                     const std::string& fleet) {
  return edit(Op::kAdd, username, password, fleet);
}

storage::Expected<storage::Done> BrokerAccounts::replace(const std::string& username,
                                                         const std::string& password,
                                                         const std::string& fleet) {
  return edit(Op::kReplace, username, password, fleet);
}

storage::Expected<storage::Done> BrokerAccounts::remove(const std::string& username) {
  return edit(Op::kRemove, username, "", "");
}

storage::Expected<std::string> BrokerAccounts::entry(const std::string& username,
                                                     const std::string& password,
                                                     const std::string& fleet) const {
  if (format_ == AccountFormat::kMosquitto)
    return username + ":" + mosquitto_password_hash(password);
  if (fleet.empty() || fleet.find_first_of(kNotInNatsNames) != std::string::npos) {
    return Error{ErrorCode::kInvalidArgument, "'" + fleet + "' is not a fleet name"};
  }
  const std::string hash = nats_password_hash(password);
  if (hash.empty()) return Error{ErrorCode::kInternal, "bcrypt (libxcrypt) failed"};
  return nats_account_entry(username, fleet, hash);
}

storage::Expected<storage::Done> BrokerAccounts::edit(Op op, const std::string& username,
                                                      const std::string& password,
                                                      const std::string& fleet) {
  if (!configured()) {
    return Error{ErrorCode::kFailedPrecondition,
                 format_ == AccountFormat::kNats
                     ? "fleetd has no NATS accounts file configured (nats.accounts_file)"
                     : "fleetd has no broker password file configured (mqtt.passwd_file)"};
  }
  const char* not_in_names = format_ == AccountFormat::kNats ? kNotInNatsNames : ":\n\r#";
  if (username.empty() || username.find_first_of(not_in_names) != std::string::npos) {
    return Error{ErrorCode::kInvalidArgument, "'" + username + "' is not a broker account name"};
  }
  if (reserved(username)) {
    return Error{ErrorCode::kFailedPrecondition,
                 "broker account '" + username + "' is reserved (not a device account)"};
  }
  if (auto alive = check_broker(); !alive) return alive.error();
  // The hash (PBKDF2 or bcrypt) is computed by each caller, outside any lock.
  Edit e{op, username, ""};
  if (op != Op::kRemove) {
    auto line = entry(username, password, fleet);
    if (!line) return line.error();
    e.line = std::move(*line);
  }
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

BrokerAccounts::Result BrokerAccounts::reindex() {
  index_.clear();
  if (format_ == AccountFormat::kMosquitto) {
    for (size_t i = 0; i < lines_.size(); ++i) {
      if (auto u = entry_user(lines_[i]); !u.empty()) index_.emplace(std::move(u), i);
    }
    insert_at_ = lines_.size();
    return storage::Done{};
  }
  auto parsed = parse_nats_accounts(lines_);
  if (!parsed) {
    return Error{
        ErrorCode::kFailedPrecondition,
        what() + " " + passwd_file_ + ", " + parsed.error().message + ": fleetd does not edit it"};
  }
  index_ = std::move(parsed->users);
  insert_at_ = parsed->close;
  return storage::Done{};
}

BrokerAccounts::Result BrokerAccounts::load_if_changed() {
  const auto now = file_id(passwd_file_);
  if (!now) {
    loaded_ = false;
    return io_error("cannot read " + what(), passwd_file_);
  }
  if (loaded_ && *now == file_id_) return storage::Done{};
  auto lines = read_lines(passwd_file_, what());
  if (!lines) {
    loaded_ = false;
    return lines.error();
  }
  lines_ = std::move(*lines);
  if (auto indexed = reindex(); !indexed) {
    loaded_ = false;
    return indexed;
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
      index_.emplace(e.user, insert_at_);
      lines_.insert(lines_.begin() + static_cast<std::ptrdiff_t>(insert_at_), e.line);
      ++insert_at_;  // NATS: the closing ']' moved down one line
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
      return reindex();  // removals are rare: re-index
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
  if (pids_.empty()) return storage::Done{};
  for (int pid : pids_) {
    if (kill(pid, 0) == 0 || errno != ESRCH) return storage::Done{};
  }
  if (format_ == AccountFormat::kNats) {
    return Error{ErrorCode::kUnavailable, "no nats-server of nats.pids (" + pid_list(pids_) +
                                              ") is running: none can reload the accounts file"};
  }
  return Error{ErrorCode::kUnavailable, "the broker (pid " + pid_list(pids_) +
                                            ", mqtt.pid) is not running: it cannot reload "
                                            "its password file"};
}

void BrokerAccounts::signal_brokers() const {
  for (int pid : pids_) kill(pid, SIGHUP);  // one that is gone: ESRCH, nothing sent
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
  if (pids_.empty()) return;
  std::lock_guard<std::mutex> lock(reload_mu_);
  const auto now = std::chrono::steady_clock::now();
  last_change_ = now;
  if (owed_ == 0 && now - last_sent_ >= kMinGap) {
    signal_brokers();  // idle: this change reloads at once
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
      signal_brokers();
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
      signal_brokers();
    }
  }
}

}  // namespace tinyfleet::server
