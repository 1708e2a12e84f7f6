#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "tinyfleet/server/delta_cache.h"

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
  bool start();
  void stop();
  // Publishes the offer (retained) and keeps the payload for the chunk requests.
  bool offer(const std::string& fleet, const std::string& device, uint64_t release,
             const std::string& signed_offer, std::string payload);

  uint64_t chunks_served() const { return chunks_; }
  uint64_t bytes_served() const { return bytes_; }
  uint64_t requests_deferred() const { return deferred_; }

 private:
  void on_request(const std::string& topic, const std::string& payload);

  std::string uri_, user_, password_, client_id_, share_group_;
  std::unique_ptr<mqtt::async_client> client_;
  std::mutex mu_;
  std::map<std::string, std::pair<uint64_t, std::shared_ptr<const std::string>>>
      payloads_;  // by "fleet/device"
  std::atomic<uint64_t> chunks_{0}, bytes_{0}, deferred_{0};
  std::unique_ptr<TokenBucket> bucket_;  // guarded by mu_
};

}  // namespace tinyfleet::server
