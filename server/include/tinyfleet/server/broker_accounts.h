#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::server {

// Device accounts on the broker, in one of two formats:
// - kMosquitto: entries "user:hash" of Mosquitto's password file (mqtt.passwd_file). The
//   topic ACL is by pattern and needs no change per device.
// - kNats: entries of nats-server's `users = [ ... ]` list, one per line, each with the
//   device's permissions (nats.accounts_file; nats_accounts.h), added before the closing
//   `]`; the file's other lines (fleetd's own account, the operator's) are kept as they are.
// fleetd writes the entries itself (broker_password.h: no password on any command line)
// into a temporary file that is fsynced, renamed over the file, and the folder fsynced;
// then each broker process of the list (mqtt.pid, or nats.pids) is sent SIGHUP to reload.
//
// Writes are batched (group commit): the file's lines stay in memory between writes
// (re-read when its inode, size or mtime show another process wrote it), and the edits
// of concurrent callers are applied together and written once; the first caller to find
// no write in progress writes for everyone queued, the others wait for its result. So N
// concurrent provisionings cost one rewrite of the file, not N (docs/scale.md).
//
// Accounts that are not devices are never touched: add() refuses a reserved name (the
// server's own account, names the protocol reserves) and any name already in the file,
// so provisioning cannot take over fleetd's account or any other non-device account;
// replace() and remove() act only on names the caller has checked are devices.
//
// Reloads are coalesced: a reload costs Mosquitto 2.0.11 about 80 us of CPU per
// connected client (it re-checks every session's password: 0.31 s with 4,000 connected,
// docs/scale.md), during which it serves nobody, so a SIGHUP per provisioning stalls a
// broker under a bulk provisioning. A change is signalled at once when no SIGHUP went
// in the last kMinGap; otherwise the reloader thread sends one SIGHUP per kMinGap for
// all changes since.
//
// Mosquitto 2.0 clears its reload flag only after reloading, so a SIGHUP that lands
// during a reload is lost (seen: the last of 200 accounts provisioned back to back
// stayed "not authorised"). Each change therefore also owes one trailing SIGHUP, sent
// once no change has come for kSettle (and kMinGap after the previous one), when every
// earlier reload is over.
enum class AccountFormat { kMosquitto, kNats };

class BrokerAccounts {
 public:
  static constexpr std::chrono::milliseconds kSettle{300};
  static constexpr std::chrono::milliseconds kMinGap{1000};
  // `reserved`: account names that are never devices (fleetd's mqtt.user), on top of
  // the built-in ones (reserved_names()). Mosquitto's password file; broker_pid 0: none
  // to signal.
  BrokerAccounts(std::string passwd_file, int broker_pid, std::vector<std::string> reserved = {});
  // Either format, signalling every pid of `pids` (none: the file is only written, e.g.
  // for another tool to distribute). A pid that is gone is skipped; a change is refused
  // (kUnavailable) only when every one of them is gone.
  BrokerAccounts(AccountFormat format, std::string file, std::vector<int> pids,
                 std::vector<std::string> reserved = {});
  ~BrokerAccounts();
  BrokerAccounts(const BrokerAccounts&) = delete;
  BrokerAccounts& operator=(const BrokerAccounts&) = delete;

  bool configured() const { return !passwd_file_.empty(); }
  // A new account: kFailedPrecondition for a reserved name, kAlreadyExists when the
  // file has the name already (a non-device account: devices are new by the caller's
  // check of the devices table).
  // `fleet`: the device's fleet, whose subjects a NATS entry permits (Mosquitto's ACL
  // needs none).
  storage::Expected<storage::Done> add(const std::string& username, const std::string& password,
                                       const std::string& fleet = "default");
  // A new password for an existing account (kNotFound when absent).
  storage::Expected<storage::Done> replace(const std::string& username, const std::string& password,
                                           const std::string& fleet = "default");
  // Removes the account if present.
  storage::Expected<storage::Done> remove(const std::string& username);
  // Names no device may have, whatever the password file says.
  static const std::set<std::string>& reserved_names();
  bool reserved(const std::string& username) const;
  // Times the file was written, and edits waiting for a write (the batching's figures).
  uint64_t writes() const { return writes_; }
  size_t queued() const;

 private:
  enum class Op { kAdd, kReplace, kRemove };
  struct Edit {
    Op op;
    std::string user, line;  // line: the entry (empty for kRemove)
  };
  using Result = storage::Expected<storage::Done>;
  storage::Expected<storage::Done> edit(Op op, const std::string& username,
                                        const std::string& password, const std::string& fleet);
  // The entry of an account (the hash computed here), or an error.
  storage::Expected<std::string> entry(const std::string& username, const std::string& password,
                                       const std::string& fleet) const;
  // index_ and insert_at_ from lines_ (kFailedPrecondition naming the line that is not
  // understood, for the NATS format).
  Result reindex();
  std::string what() const;  // "broker password file" or "NATS accounts file"
  // The writer's part: applies `batch` to the lines and writes the file once.
  std::vector<Result> commit(const std::vector<const Edit*>& batch);
  Result apply(const Edit& e);  // on lines_/index_ only
  Result load_if_changed();     // under the file lock
  AccountFormat format_;
  std::string passwd_file_;
  std::vector<int> pids_;
  std::set<std::string> reserved_;
  mutable std::mutex mu_;  // guards queue_, results_, writing_
  std::condition_variable written_;
  std::vector<const Edit*> queue_;
  std::map<const Edit*, Result> results_;
  bool writing_ = false;
  std::atomic<uint64_t> writes_{0};
  // The file as last read or written (only the writer touches these).
  std::vector<std::string> lines_;
  std::unordered_map<std::string, size_t> index_;  // user -> line
  size_t insert_at_ = 0;  // where add() puts a line: the end, or before NATS's closing ']'
  bool loaded_ = false;
  struct FileId {
    uint64_t ino = 0, size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileId& o) const {
      return ino == o.ino && size == o.size && mtime_ns == o.mtime_ns;
    }
  } file_id_;
  static std::optional<FileId> file_id(const std::string& path);
  // kUnavailable naming the pid(s) when every broker process is gone.
  storage::Expected<storage::Done> check_broker() const;
  void signal_brokers() const;  // SIGHUP to each pid
  // Signals the broker now, or leaves it to the reloader (see above).
  void schedule_reload();
  void reload_loop();
  std::mutex reload_mu_;
  std::condition_variable reload_cv_;
  std::chrono::steady_clock::time_point last_change_{}, last_sent_{};
  int owed_ = 0;  // SIGHUPs still owed for changes made: 2 (prompt + trailing), 1, 0
  bool stopping_ = false;
  std::thread reloader_;
};

}  // namespace tinyfleet::server
