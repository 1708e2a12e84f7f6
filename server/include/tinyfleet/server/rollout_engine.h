#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tinyfleet/server/offer_builder.h"
#include "tinyfleet/server/update_publisher.h"
#include "tinyfleet/storage/database.h"

namespace tinyfleet::server {

// Drives every active rollout from the database, so any fleetd replica can take over:
// one leader at a time (a PostgreSQL advisory lock held on a connection of its own).
// Each tick the leader applies device status reports, admits devices of the current
// phase at the rollout's rate (offer built, stored with its release number, then
// published retained), moves a settled phase to baking, evaluates the gates on the
// telemetry of the new against the old model, and advances, pauses or rolls back.
// A new leader first re-publishes the offers still outstanding, so nothing promised
// before a crash is lost and no device gets a second, different offer.
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

 private:
  struct Status {
    std::string fleet, device, payload;
  };
  struct Active {
    int64_t id = 0;
    std::string name, fleet, state, gates, on_failure, reason, model;
    int rate = 0, phase = 0, phases = 0;
    int64_t version_id = 0;
    uint32_t version = 0;
  };
  // One device to send an offer to, with what the offer needs.
  struct Pick {
    std::string device, device_class, current, target, model;
    uint32_t version = 0;
  };
  void step_running(const Active& r);
  void step_rolling_back(const Active& r);
  int admit(const Active& r, int n);
  // Builds, stores (release, offer, payload) and then publishes; `next_state` is what
  // the devices become ("offered" or "reverting").
  int send_offers(const Active& r, const std::vector<Pick>& picks, const std::string& next_state);
  void fail(const Active& r, const std::string& why);
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
  std::map<int64_t, double> admit_tokens_;  // per rollout: devices that may be admitted now
};

}  // namespace tinyfleet::server
