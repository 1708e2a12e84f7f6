#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tinyfleet/server/device_rejects.h"
#include "tinyfleet/server/gate_policy.h"
#include "tinyfleet/server/offer_builder.h"
#include "tinyfleet/server/update_publisher.h"
#include "tinyfleet/storage/database.h"

namespace tinyfleet::server {

namespace rollouts {
struct StatusReport;
}
namespace rollouts::repo {
struct Driven;
struct OfferTarget;
}  // namespace rollouts::repo

// Drives every active rollout from the database, so any fleetd replica can take over:
// one leader at a time (a PostgreSQL advisory lock held on a connection of its own), each
// leadership under a new lease epoch (rollout_lease, migration 0014) that every leader
// write checks in its own transaction, so a deposed leader's late write is refused.
// Each tick the leader applies device status reports, admits devices of the current
// phase at the rollout's rate (offer built, stored with its release number, then
// published retained), moves a settled phase to baking, decides the gates with the gate
// statistics (`gates`: canary devices against control or baseline devices, at looks
// spread over gates.max_wait after the bake), and advances, pauses or rolls back.
// A new leader first re-publishes the offers still outstanding, so nothing promised
// before a crash is lost and no device gets a second, different offer. Offers leave
// through an outbox (device_offers.published_at, migration 0019): stored first, counted
// as published only once the broker acknowledged the retained publish (QoS 1), and
// published again until it does. Every state it
// writes is a compare-and-set on the state it read (server/src/rollouts/repository.h):
// an operator's Pause or Abort committed during a tick wins over the tick.
class RolloutEngine {
 public:
  RolloutEngine(storage::Database& db, std::string database_uri, UpdatePublisher& publisher,
                OfferBuilder& builder, double tick_seconds = 0.25, GatePolicy gates = {});
  ~RolloutEngine();
  void start();
  void stop();
  void wake();
  // A device's status report (from the listener's thread): parsed here into a typed
  // report and, on the leader, kept until it applies it (a follower counts it in
  // statuses_ignored and keeps nothing). One that does not parse is counted in
  // `rejects` and dropped (false). Per device only the latest report waits, besides up
  // to kMaxEventsPerDevice earlier refusals and rollbacks (events a later report need
  // not repeat), so a flooding device loses only its own events; reports of at most
  // kMaxDevicesPending devices wait at a time. Never throws.
  bool on_status(const std::string& fleet, const std::string& device, const std::string& payload);
  static constexpr size_t kMaxEventsPerDevice = 16, kMaxDevicesPending = 100000;
  // Where malformed reports are counted (set before start(); may stay null).
  void set_rejects(DeviceRejects* rejects) { rejects_ = rejects; }
  uint64_t statuses_rejected() const { return statuses_rejected_; }
  uint64_t statuses_dropped() const { return statuses_dropped_; }
  bool leader() const { return leader_; }
  // The lease epoch this replica leads under (0 while it never led; migration 0014).
  int64_t epoch() const { return epoch_; }
  // Leader writes refused because a newer leader took the lease (each logged as
  // rollouts.fenced; the replica then stops leading and tries for the lock again).
  uint64_t writes_fenced() const { return fenced_; }
  // Reports a follower heard and did not keep: the leader hears every report too (each
  // replica subscribes to all of them), and a replica that becomes leader asks the broker
  // for every device's retained report again (set_on_leadership), so a follower holds none.
  uint64_t statuses_ignored() const { return statuses_ignored_; }
  // Called on the engine's thread each time this replica becomes leader (after the lease
  // was taken): fleetd re-subscribes to the devices' retained status reports there.
  void set_on_leadership(std::function<void()> hook) { on_leadership_ = std::move(hook); }
  // Publish again, every `every`, each offer the broker acknowledged at least `every` ago
  // that its device has not answered (still offered). For a clustered broker (NATS), where
  // a device that subscribes on another node just after the publish can miss both the live
  // message and the retained copy (that node learns of it later); a device ignores an offer
  // it is already taking. 0 (the default, Mosquitto): never.
  void set_offer_resend(std::chrono::seconds every) { resend_every_ = every; }
  uint64_t offers_published() const { return offers_; }
  // For tests: called with the rollout's id after a tick has read the rollout and
  // before it writes anything for it (set before start()).
  void set_after_read_hook(std::function<void(int64_t rollout_id)> hook) {
    after_read_ = std::move(hook);
  }

 private:
  using Report = std::shared_ptr<const rollouts::StatusReport>;
  struct Pending {
    std::deque<Report> events;  // earlier refusals and rollbacks, oldest first
    Report latest;
  };
  using Driven = rollouts::repo::Driven;
  using OfferTarget = rollouts::repo::OfferTarget;
  void step_running(const Driven& r);
  void step_reverting(const Driven& r);
  int admit(const Driven& r, int n);
  // Builds, stores (release, offer, payload) and then publishes; the devices become
  // offered (or, `reverting`, reverting). Stores nothing once the rollout left the state
  // it was read in.
  int send_offers(const Driven& r, const std::vector<OfferTarget>& picks, bool reverting);
  void fail(const Driven& r, const std::string& why);
  bool gate_history_due(int64_t rollout_id);  // and marks it done now
  void cannot_sign(const Driven& r, const std::string& why);
  void run();
  bool try_lead();
  // Re-publishes every outstanding offer (the database is the record; a broker may have
  // lost its retained copies), or only those still in the outbox (not acknowledged by
  // the broker), or (`published_before` > 0) those acknowledged at least that long ago.
  // `why`: leadership, reconnect, retry or resend.
  void recover(const char* why, bool unpublished_only = false,
               std::chrono::seconds published_before = std::chrono::seconds(0));
  // After a reconnect of the publisher: every outstanding offer; otherwise the outbox,
  // every 2 s after a failed publish and every 5 s in any case; and, with set_offer_resend,
  // the unanswered offers acknowledged at least that long ago.
  void republish_if_needed();
  // Takes offers the broker acknowledged (device, release) out of the outbox.
  void mark_published(const std::vector<std::pair<std::string, uint64_t>>& acked);
  void apply_statuses();
  // Applies one group of the batch in one transaction (plain: apply_plain_statuses; else
  // one device at a time); what the database refused is retried a device at a time.
  void apply_status_group(
      const std::vector<std::pair<const std::pair<std::string, std::string>, Pending>*>& group,
      bool plain);
  void tick();
  // A leader write: `body` runs in one transaction after the lease row was checked to
  // still carry this replica's epoch (repo::hold_lease); a refused one is logged and counted
  // and this replica stops leading.
  template <class Body>
  auto lead(Body&& body) {
    auto result = db_.transact([&](pqxx::work& w) {
      hold_lease(w);
      return body(w);
    });
    if (!result) check_fenced(result.error());
    return result;
  }
  void hold_lease(pqxx::work& w);
  void check_fenced(const storage::Error& error);
  void lose_leadership();

  storage::Database& db_;
  std::string uri_;
  UpdatePublisher& publisher_;
  OfferBuilder& builder_;
  double tick_seconds_;
  GatePolicy gates_;
  std::unique_ptr<pqxx::connection> lock_conn_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::pair<std::string, std::string>, Pending> pending_;  // by (fleet, device)
  DeviceRejects* rejects_ = nullptr;
  std::atomic<uint64_t> statuses_rejected_{0}, statuses_dropped_{0};
  bool stop_ = false, woken_ = false;
  std::atomic<bool> leader_{false};
  std::atomic<int64_t> epoch_{0};
  std::atomic<uint64_t> fenced_{0}, statuses_ignored_{0};
  std::function<void()> on_leadership_;
  std::atomic<uint64_t> offers_{0};
  std::function<void(int64_t)> after_read_;
  std::map<int64_t, double> admit_tokens_;  // per rollout: devices that may be admitted now
  // Per rollout: when the gates last went to the history (rollout_gate_history).
  std::map<int64_t, std::chrono::steady_clock::time_point> gate_history_at_;
  // Per rollout: the phase and the last look (after its bake) the gates decided at.
  std::map<int64_t, std::pair<int, int>> looked_;
  std::chrono::steady_clock::time_point cannot_sign_logged_{};
  uint64_t connections_seen_ = 0;  // publisher_.connections() at the last re-publication
  bool republish_ = false;         // a publish failed: re-publish the outbox soon
  std::chrono::steady_clock::time_point republished_at_{};
  std::chrono::seconds resend_every_{0};  // set_offer_resend
  std::chrono::steady_clock::time_point resent_at_{};
};

}  // namespace tinyfleet::server
