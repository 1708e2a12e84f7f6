#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tinyfleet/server/offer_builder.h"
#include "tinyfleet/server/update_publisher.h"
#include "tinyfleet/storage/database.h"

namespace tinyfleet::server {

namespace rollouts::repo {
struct Driven;
struct OfferTarget;
}  // namespace rollouts::repo

// Drives every active rollout from the database, so any fleetd replica can take over:
// one leader at a time (a PostgreSQL advisory lock held on a connection of its own).
// Each tick the leader applies device status reports, admits devices of the current
// phase at the rollout's rate (offer built, stored with its release number, then
// published retained), moves a settled phase to baking, evaluates the gates on the
// telemetry of the new against the old model, and advances, pauses or rolls back.
// A new leader first re-publishes the offers still outstanding, so nothing promised
// before a crash is lost and no device gets a second, different offer. Every state it
// writes is a compare-and-set on the state it read (server/src/rollouts/repository.h):
// an operator's Pause or Abort committed during a tick wins over the tick.
class RolloutEngine {
 public:
  RolloutEngine(storage::Database& db, std::string database_uri, UpdatePublisher& publisher,
                OfferBuilder& builder, double tick_seconds = 0.25);
  ~RolloutEngine();
  void start();
  void stop();
  void wake();
  // A device's status report (from the listener's thread); the leader applies it.
  void on_status(const std::string& fleet, const std::string& device, const std::string& payload);
  bool leader() const { return leader_; }
  uint64_t offers_published() const { return offers_; }
  // For tests: called with the rollout's id after a tick has read the rollout and
  // before it writes anything for it (set before start()).
  void set_after_read_hook(std::function<void(int64_t rollout_id)> hook) {
    after_read_ = std::move(hook);
  }

 private:
  struct Status {
    std::string fleet, device, payload;
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
  void run();
  bool try_lead();
  void recover();
  void apply_statuses();
  void tick();

  storage::Database& db_;
  std::string uri_;
  UpdatePublisher& publisher_;
  OfferBuilder& builder_;
  double tick_seconds_;
  std::unique_ptr<pqxx::connection> lock_conn_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Status> statuses_;
  bool stop_ = false, woken_ = false;
  std::atomic<bool> leader_{false};
  std::atomic<uint64_t> offers_{0};
  std::function<void(int64_t)> after_read_;
  std::map<int64_t, double> admit_tokens_;  // per rollout: devices that may be admitted now
};

}  // namespace tinyfleet::server
