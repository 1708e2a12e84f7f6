#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "tinyfleet/server/delta_cache.h"
#include "tinyfleet/server/device_rejects.h"

namespace mqtt {
class async_client;
}

namespace tinyfleet::server {

// The server's MQTT side of updates: publishes each device's signed offer retained on
// tinyfleet/v1/{fleet}/{device}/offer, and answers chunk requests from any offset (so a
// download resumes) out of the payloads it holds, through a shared subscription so
// fleetd replicas split the load. Topics and the TFCR/TFCK framing are update/'s
// (topics.h, chunk_framing.h).
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
  };
  void set_limits(const Limits& limits) { limits_ = limits; }
  // Finds the payload of `device`'s outstanding offer of `release` after the LRU evicted
  // it (nullptr: there is none). Called on Paho's thread, once per eviction, for a
  // request naming the evicted release, after the device's bucket allowed it.
  using PayloadLoader = std::function<std::shared_ptr<const std::string>(
      const std::string& fleet, const std::string& device, uint64_t release)>;
  void set_payload_loader(PayloadLoader loader) { loader_ = std::move(loader); }
  // Where malformed chunk requests are counted (may stay null).
  void set_rejects(DeviceRejects* rejects) { rejects_ = rejects; }

  // With an ssl:// URI: the CA the broker's certificate must chain to (set before start()).
  void set_ca_file(std::string ca_file) { ca_file_ = std::move(ca_file); }
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

  // Counts the publisher's connections to the broker (1 after start(), +1 per reconnect):
  // a broker that restarted without its retained messages lost the offers, so whoever sees
  // this change re-publishes what is outstanding.
  uint64_t connections() const { return connections_; }
  // Clears `device`'s retained offer (an empty retained message: the agent abandons an
  // update of it in flight) and forgets its payload.
  bool withdraw(const std::string& fleet, const std::string& device);
  uint64_t chunks_served() const { return chunks_; }
  uint64_t bytes_served() const { return bytes_; }
  uint64_t requests_deferred() const { return deferred_; }  // by either bound
  uint64_t requests_deferred_device() const { return deferred_device_; }
  uint64_t payloads_evicted() const { return evicted_; }
  uint64_t payloads_loaded() const { return loaded_; }
  size_t payload_bytes() const;

 private:
  std::string ca_file_;
  struct Kept {
    uint64_t release = 0;
    std::shared_ptr<const std::string> payload;
    std::list<std::string>::iterator use;  // in lru_
  };
  void on_request(const std::string& topic, const std::string& payload);
  // Under mu_: keeps `payload` for `key`, then evicts the least recently used beyond
  // the byte cap (never the one just kept).
  void keep(const std::string& key, uint64_t release, std::shared_ptr<const std::string> payload);
  void forget(std::map<std::string, Kept>::iterator it);
  bool allowed(const std::string& key, double bytes, double now);

  std::string uri_, user_, password_, client_id_, share_group_;
  std::unique_ptr<mqtt::async_client> client_;
  Limits limits_;
  PayloadLoader loader_;
  DeviceRejects* rejects_ = nullptr;
  mutable std::mutex mu_;
  std::map<std::string, Kept> payloads_;  // by "fleet/device"
  std::list<std::string> lru_;            // keys of payloads_, most recently used first
  size_t payload_bytes_ = 0;
  std::map<std::string, uint64_t> evicted_keys_;       // "fleet/device" -> release evicted
  std::map<std::string, TokenBucket> device_buckets_;  // by "fleet/device"; bounded
  std::atomic<uint64_t> connections_{0};
  bool subscribe_requests_ = true;
  std::atomic<uint64_t> chunks_{0}, bytes_{0}, deferred_{0}, deferred_device_{0}, evicted_{0},
      loaded_{0};
  std::unique_ptr<TokenBucket> bucket_;  // guarded by mu_
};

}  // namespace tinyfleet::server
