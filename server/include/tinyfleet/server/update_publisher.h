#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tinyfleet/server/delta_cache.h"
#include "tinyfleet/server/device_rejects.h"

namespace mqtt {
class async_client;
class delivery_token;
}  // namespace mqtt

namespace tinyfleet::server {

// The server's MQTT side of updates: publishes each device's signed offer retained on
// tinyfleet/v1/{fleet}/{device}/offer, and answers chunk requests from any offset (so a
// download resumes) through a shared subscription so fleetd replicas split the load. Any
// replica answers any request: out of the payloads it holds (the ones it offered, and
// ones it loaded), or, on a miss, through the payload loader (the device's outstanding
// offer in device_offers and its blob), so a follower serves what the leader offered.
// Topics and the TFCR/TFCK framing are update/'s (topics.h, chunk_framing.h).
class UpdatePublisher {
 public:
  // `bytes_per_second` bounds what all chunk answers together send (0: no bound).
  // `share_group` names the shared subscription the replicas of one deployment split
  // chunk requests in (deployments sharing a broker need different groups).
  UpdatePublisher(std::string broker_uri, std::string user, std::string password,
                  std::string client_id, double bytes_per_second = 0,
                  std::string share_group = "fleetd");
  ~UpdatePublisher();

  // What one device may cost (set before start()).
  struct Limits {
    // Chunk answers to one device, bytes/s (1 s of burst); 0: unbounded. Checked before
    // the shared bound, so one device cannot take all of it.
    double device_bytes_per_second = 1 << 20;
    // Payloads kept for chunk answers, bytes; the least recently used go first (a later
    // request for one is served through the payload loader, if any).
    size_t payload_cache_bytes = size_t(256) << 20;
    // Loader calls one device may cause: a request for a (device, release) this publisher
    // does not hold costs one lookup, at most this many a second per device (burst
    // kLookupBurst); over it the request is deferred (the device asks again).
    double device_lookups_per_second = 0.5;
  };
  static constexpr double kLookupBurst = 3;
  // A (device, release) the loader did not find is not looked up again for this long
  // (a negative cache of at most kMaxUnknown entries), so a hostile device repeating one
  // unknown release costs nothing.
  static constexpr double kUnknownSeconds = 10;
  static constexpr size_t kMaxUnknown = 100000;
  void set_limits(const Limits& limits) { limits_ = limits; }
  // Finds the payload of `device`'s outstanding offer of `release` when this publisher
  // does not hold it (another replica offered it, or the LRU evicted it): a payload;
  // nullptr when there is no such offer (remembered for kUnknownSeconds); nullopt when
  // it could not look (the database is away: not remembered). Called on Paho's one
  // callback thread, so at most one load runs at a time, after the device's chunk and
  // lookup buckets allowed it and the negative cache did not know the pair.
  using PayloadLoader = std::function<std::optional<std::shared_ptr<const std::string>>(
      const std::string& fleet, const std::string& device, uint64_t release)>;
  void set_payload_loader(PayloadLoader loader) { loader_ = std::move(loader); }
  // Where malformed chunk requests are counted (may stay null).
  void set_rejects(DeviceRejects* rejects) { rejects_ = rejects; }

  // With an ssl:// URI: the CA the broker's certificate must chain to (set before start()).
  void set_ca_file(std::string ca_file) { ca_file_ = std::move(ca_file); }
  // offer_all's offers go out over `n` more MQTT sessions of their own, in turn (set
  // before start(); 0: all on the publisher's one session). Mosquitto reads one packet
  // per connection per turn of its event loop, so one session carries at most one offer
  // (or chunk answer) per turn however many are in flight; with the broker busy with
  // thousands of devices, that set a phase's pace (docs/scale.md).
  static constexpr int kMaxOfferSessions = 16;
  void set_offer_sessions(int n) { offer_sessions_ = std::clamp(n, 0, kMaxOfferSessions); }
  // Chunk requests come from elsewhere (a NATS queue group, broker.kind = nats) through
  // handle_request(), not from the shared subscription (set before start()).
  void set_requests_from_caller() { subscribe_requests_ = false; }
  // A chunk request on `topic` (tinyfleet/v1/{fleet}/{device}/chunk/req); one thread.
  void handle_request(const std::string& topic, const std::string& payload) {
    on_request(topic, payload);
  }
  bool start();
  void stop();
  // Publishes the offer (retained, QoS 1) and keeps the payload for the chunk requests.
  // True once the broker acknowledged it (PUBACK, within kAckTimeout); false when it did
  // not (not connected, refused, or no answer).
  static constexpr std::chrono::seconds kAckTimeout{5};
  bool offer(const std::string& fleet, const std::string& device, uint64_t release,
             const std::string& signed_offer, std::string payload);
  // offer() for many devices, pipelined: every offer is published before the first PUBACK
  // is waited for, kOfferWindow at a time (one broker round trip per window, not per
  // device). acked[i] as offer()'s.
  static constexpr size_t kOfferWindow = 64;
  // Publishes Paho may queue unsent (offers, chunk answers, withdrawals; Paho's default is
  // 100, which chunk answers to a phase of thousands of devices overran). Not more: Paho
  // walks its whole queue for each publish. An offer finding the queue full waits for room;
  // a chunk answer is dropped (chunk_answers_dropped(); the device asks again).
  static constexpr int kMaxQueuedPublishes = 1000;
  struct Offer {
    std::string fleet, device;
    uint64_t release = 0;
    const std::string* signed_offer = nullptr;
    std::string payload;
  };
  // With `meanwhile`, the offers go out on a thread of their own and `meanwhile` runs on
  // this one every kMeanwhileEvery until the last PUBACK came: a phase of 5,000 offers
  // takes seconds to be acknowledged, and the rollout engine applies the status reports
  // of the devices already updating meanwhile (its one thread would otherwise hold them
  // until the last PUBACK; run between the windows instead, it stalled the pipeline).
  static constexpr std::chrono::milliseconds kMeanwhileEvery{500};
  std::vector<bool> offer_all(std::vector<Offer> offers,
                              const std::function<void()>& meanwhile = {});

  // Counts the publisher's connections to the broker (1 after start(), +1 per reconnect):
  // a broker that restarted without its retained messages lost the offers, so whoever sees
  // this change re-publishes what is outstanding.
  uint64_t connections() const { return connections_; }
  // Clears `device`'s retained offer (an empty retained message: the agent abandons an
  // update of it in flight) and forgets its payload.
  bool withdraw(const std::string& fleet, const std::string& device);
  uint64_t chunks_served() const { return chunks_; }
  uint64_t chunk_answers_dropped() const { return chunks_dropped_; }
  uint64_t offers_waited() const { return offers_waited_; }  // 5 ms waits for Paho's queue
  uint64_t offers_acked() const { return offers_acked_; }    // by offer_all's PUBACKs
  uint64_t bytes_served() const { return bytes_; }
  uint64_t requests_deferred() const { return deferred_; }  // by either bound
  uint64_t requests_deferred_device() const { return deferred_device_; }
  uint64_t payloads_evicted() const { return evicted_; }
  uint64_t payloads_loaded() const { return loaded_; }
  // Loader calls (found or not), and requests refused without one: the pair was in the
  // negative cache or the device's lookup bucket was empty.
  uint64_t payload_lookups() const { return lookups_; }
  uint64_t lookups_refused() const { return lookups_refused_; }
  size_t payload_bytes() const;

 private:
  std::string ca_file_;
  struct Kept {
    uint64_t release = 0;
    std::shared_ptr<const std::string> payload;
    std::list<std::string>::iterator use;  // in lru_
  };
  void on_request(const std::string& topic, const std::string& payload);
  // offer_all's offers, kOfferWindow unacknowledged at a time; acked[i] as offer()'s.
  std::vector<bool> pipeline(std::vector<Offer> offers);
  std::shared_ptr<mqtt::delivery_token> publish_waiting_for_room(mqtt::async_client& client,
                                                                 const std::string& device,
                                                                 const char* topic,
                                                                 const std::string& offer);
  // Under mu_: keeps `payload` for `key`, then evicts the least recently used beyond
  // the byte cap (never the one just kept).
  void keep(const std::string& key, uint64_t release, std::shared_ptr<const std::string> payload);
  void forget(std::map<std::string, Kept>::iterator it);
  bool allowed(const std::string& key, double bytes, double now);
  // Under mu_: whether a miss for (key, release) may call the loader now.
  bool may_look_up(const std::string& key, uint64_t release, double now);
  // A payload for the request, held or loaded (nullptr: none to answer with).
  std::shared_ptr<const std::string> payload_for(const std::string& fleet,
                                                 const std::string& device, uint64_t release,
                                                 double now);

  std::string uri_, user_, password_, client_id_, share_group_;
  std::unique_ptr<mqtt::async_client> client_;
  // The offer sessions (set_offer_sessions), and each one's connections so far: a
  // reconnect of one counts in connections() as the publisher's own do.
  int offer_sessions_ = 0;
  std::vector<std::unique_ptr<mqtt::async_client>> lanes_;
  std::unique_ptr<std::atomic<uint64_t>[]> lane_connections_;
  bool start_lanes();
  mqtt::async_client& lane(size_t i) {
    return lanes_.empty() ? *client_ : *lanes_[i % lanes_.size()];
  }
  Limits limits_;
  PayloadLoader loader_;
  DeviceRejects* rejects_ = nullptr;
  mutable std::mutex mu_;
  std::map<std::string, Kept> payloads_;  // by "fleet/device"
  std::list<std::string> lru_;            // keys of payloads_, most recently used first
  size_t payload_bytes_ = 0;
  std::map<std::string, TokenBucket> device_buckets_;  // by "fleet/device"; bounded
  std::map<std::string, TokenBucket> lookup_buckets_;  // by "fleet/device"; bounded
  // "fleet/device" -> (release the loader did not find, when); bounded by kMaxUnknown.
  std::map<std::string, std::pair<uint64_t, double>> unknown_;
  std::atomic<uint64_t> connections_{0};
  bool subscribe_requests_ = true;
  std::atomic<uint64_t> chunks_{0}, bytes_{0}, deferred_{0}, deferred_device_{0}, evicted_{0},
      loaded_{0}, lookups_{0}, lookups_refused_{0}, chunks_dropped_{0}, offers_waited_{0},
      offers_acked_{0};
  std::unique_ptr<TokenBucket> bucket_;  // guarded by mu_
};

}  // namespace tinyfleet::server
