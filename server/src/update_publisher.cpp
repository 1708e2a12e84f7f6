#include "tinyfleet/server/update_publisher.h"

#include <mqtt/async_client.h>

#include <MQTTAsync.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

#include "mqtt_options.h"
#include "tinyfleet/server/log.h"
#include "tinyfleet/update/chunk_framing.h"
#include "tinyfleet/update/topics.h"

namespace tinyfleet::server {

namespace {
// Chunk requests of every device, split between the replicas of one share group (none:
// a plain subscription, one fleetd).
std::string request_filter(const std::string& share_group) {
  char filter[update::kMaxTopicBytes];
  update::topic_filter(nullptr, update::TopicKind::kChunkRequest, filter, sizeof filter);
  return share_group.empty() ? std::string(filter) : "$share/" + share_group + "/" + filter;
}
}  // namespace

UpdatePublisher::UpdatePublisher(std::string broker_uri, std::string user, std::string password,
                                 std::string client_id, double bytes_per_second,
                                 std::string share_group)
    : uri_(std::move(broker_uri)),
      user_(std::move(user)),
      password_(std::move(password)),
      client_id_(std::move(client_id)),
      share_group_(std::move(share_group)) {
  if (bytes_per_second > 0) {
    bucket_ = std::make_unique<TokenBucket>(bytes_per_second, bytes_per_second);  // 1 s of burst
  }
}

UpdatePublisher::~UpdatePublisher() { stop(); }

bool UpdatePublisher::start() {
  // A deeper queue, but nothing queued while disconnected: a publish then fails at once
  // (the offer stays in the outbox). create_options(version, n) would also buffer offline.
  mqtt::create_options create(fleetd_mqtt_version());
  create.set_max_buffered_messages(kMaxQueuedPublishes);
  create.set_send_while_disconnected(false);
  client_ = std::make_unique<mqtt::async_client>(uri_, client_id_, create);
  client_->set_message_callback([this](mqtt::const_message_ptr m) {
    try {  // nothing may leave Paho's thread as an exception
      on_request(m->get_topic(), m->get_payload_str());
    } catch (const std::exception& e) {
      log::error("publisher.request", {{"topic", m->get_topic()}, {"error", e.what()}});
    }
  });
  const auto opts = fleetd_connect_options("publisher", user_, password_, ca_file_);
  // Subscriptions are restored after a reconnect (clean start drops them); the count of
  // connections tells the engine to re-publish outstanding offers.
  client_->set_connected_handler([this](const std::string&) {
    const uint64_t n = ++connections_;
    if (n > 1) log::info("publisher.reconnected", {{"connections", n}});
    try {
      if (subscribe_requests_) client_->subscribe(request_filter(share_group_), 1);
    } catch (const mqtt::exception&) {
    }
  });
  try {
    client_->connect(opts)->wait();
    if (subscribe_requests_) client_->subscribe(request_filter(share_group_), 1)->wait();
  } catch (const mqtt::exception& e) {
    log::error("publisher.connect", {{"error", e.what()}});
    return false;
  }
  return start_lanes();
}

bool UpdatePublisher::start_lanes() {
  lane_connections_ = std::make_unique<std::atomic<uint64_t>[]>(offer_sessions_);
  const auto opts = fleetd_connect_options("publisher", user_, password_, ca_file_);
  for (int k = 0; k < offer_sessions_; ++k) {
    mqtt::create_options create(fleetd_mqtt_version());
    create.set_max_buffered_messages(kMaxQueuedPublishes);
    create.set_send_while_disconnected(false);
    auto lane = std::make_unique<mqtt::async_client>(
        uri_, client_id_ + "-o" + std::to_string(k + 1), create);
    lane_connections_[k] = 0;
    lane->set_connected_handler([this, k](const std::string&) {
      if (++lane_connections_[k] > 1) {
        const uint64_t n = ++connections_;
        log::info("publisher.reconnected", {{"connections", n}, {"offer_session", k + 1}});
      }
    });
    try {
      lane->connect(opts)->wait();
    } catch (const mqtt::exception& e) {
      log::error("publisher.connect", {{"offer_session", k + 1}, {"error", e.what()}});
      return false;
    }
    lanes_.push_back(std::move(lane));
  }
  return true;
}

void UpdatePublisher::stop() {
  for (auto& lane : lanes_) {
    try {
      if (lane->is_connected()) lane->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  }
  if (client_ && client_->is_connected()) {
    try {
      client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  }
}

bool UpdatePublisher::offer(const std::string& fleet, const std::string& device, uint64_t release,
                            const std::string& signed_offer, std::string payload) {
  char topic[update::kMaxTopicBytes];
  if (const auto s = update::device_topic(fleet.c_str(), device.c_str(), update::TopicKind::kOffer,
                                          topic, sizeof topic);
      !s.ok()) {
    log::error("publisher.offer", {{"device", device}, {"error", update::to_string(s.error)}});
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    keep(fleet + "/" + device, release, std::make_shared<const std::string>(std::move(payload)));
  }
  // QoS 1: the token completes on the broker's PUBACK; only then is the offer published
  // (the engine takes it out of its outbox). A broker that does not answer in time is
  // taken as away (the engine publishes the same offer again later).
  try {
    if (!client_->publish(topic, signed_offer, 1, true)->wait_for(kAckTimeout)) {
      log::error("publisher.offer", {{"device", device}, {"error", "no PUBACK in time"}});
      return false;
    }
  } catch (const mqtt::exception& e) {
    log::error("publisher.offer", {{"device", device}, {"error", e.what()}});
    return false;
  }
  return true;
}

std::vector<bool> UpdatePublisher::offer_all(std::vector<Offer> offers,
                                             const std::function<void()>& meanwhile) {
  if (!meanwhile) return pipeline(std::move(offers));
  // The pipeline on a thread of its own, so `meanwhile` (on this one) never holds it up.
  std::vector<bool> acked;
  std::exception_ptr failed;
  std::atomic<bool> done{false};
  std::thread publishing([&] {
    try {
      acked = pipeline(std::move(offers));
    } catch (...) {
      failed = std::current_exception();
    }
    done = true;
  });
  auto next = std::chrono::steady_clock::now() + kMeanwhileEvery;
  while (!done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!done && std::chrono::steady_clock::now() >= next) {
      meanwhile();
      next = std::chrono::steady_clock::now() + kMeanwhileEvery;
    }
  }
  publishing.join();
  if (failed) std::rethrow_exception(failed);
  return acked;
}

std::vector<bool> UpdatePublisher::pipeline(std::vector<Offer> offers) {
  std::vector<bool> acked(offers.size(), false);
  std::vector<mqtt::delivery_token_ptr> tokens(offers.size());
  // At most kOfferWindow unacknowledged at a time: Paho refuses publishes beyond its
  // buffer ("No more messages can be buffered", seen with 4,000 offers in one batch).
  const auto wait = [&](size_t i) {
    if (!tokens[i]) return;
    try {
      acked[i] = tokens[i]->wait_for(kAckTimeout);
    } catch (const mqtt::exception& e) {
      log::error("publisher.offer", {{"device", offers[i].device}, {"error", e.what()}});
    }
    if (acked[i]) ++offers_acked_;
    if (!acked[i]) {
      log::error("publisher.offer", {{"device", offers[i].device}, {"error", "no PUBACK in time"}});
    }
  };
  // kOfferWindow in flight per session (each is read one packet per broker loop turn).
  const size_t window = kOfferWindow * std::max<size_t>(1, lanes_.size());
  for (size_t i = 0; i < offers.size(); ++i) {
    if (i >= window) wait(i - window);
    auto& o = offers[i];
    char topic[update::kMaxTopicBytes];
    if (const auto s = update::device_topic(o.fleet.c_str(), o.device.c_str(),
                                            update::TopicKind::kOffer, topic, sizeof topic);
        !s.ok()) {
      log::error("publisher.offer", {{"device", o.device}, {"error", update::to_string(s.error)}});
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      keep(o.fleet + "/" + o.device, o.release,
           std::make_shared<const std::string>(std::move(o.payload)));
    }
    tokens[i] = publish_waiting_for_room(lane(i), o.device, topic, *o.signed_offer);
  }
  // The PUBACKs (see offer()) of the last window.
  for (size_t i = offers.size() > window ? offers.size() - window : 0; i < offers.size(); ++i) {
    wait(i);
  }
  return acked;
}

mqtt::delivery_token_ptr UpdatePublisher::publish_waiting_for_room(mqtt::async_client& client,
                                                                   const std::string& device,
                                                                   const char* topic,
                                                                   const std::string& offer) {
  // Paho's queue is shared with the chunk answers (Paho's thread): when it is full, the
  // offer waits for room, up to kAckTimeout, rather than failing.
  const auto give_up = std::chrono::steady_clock::now() + kAckTimeout;
  for (;;) {
    try {
      return client.publish(topic, offer, 1, true);
    } catch (const mqtt::exception& e) {
      if (e.get_return_code() != MQTTASYNC_MAX_BUFFERED_MESSAGES ||
          std::chrono::steady_clock::now() >= give_up) {
        log::error("publisher.offer", {{"device", device}, {"error", e.what()}});
        return nullptr;
      }
      ++offers_waited_;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

bool UpdatePublisher::withdraw(const std::string& fleet, const std::string& device) {
  char topic[update::kMaxTopicBytes];
  if (!update::device_topic(fleet.c_str(), device.c_str(), update::TopicKind::kOffer, topic,
                            sizeof topic)
           .ok()) {
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = payloads_.find(fleet + "/" + device); it != payloads_.end()) forget(it);
  }
  try {
    if (!client_->publish(topic, std::string(), 1, true)->wait_for(kAckTimeout)) return false;
  } catch (const mqtt::exception& e) {
    log::error("publisher.withdraw", {{"device", device}, {"error", e.what()}});
    return false;
  }
  return true;
}

size_t UpdatePublisher::payload_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return payload_bytes_;
}

void UpdatePublisher::forget(std::map<std::string, Kept>::iterator it) {
  payload_bytes_ -= it->second.payload->size();
  lru_.erase(it->second.use);
  payloads_.erase(it);
}

void UpdatePublisher::keep(const std::string& key, uint64_t release,
                           std::shared_ptr<const std::string> payload) {
  if (auto it = payloads_.find(key); it != payloads_.end()) forget(it);
  payload_bytes_ += payload->size();
  lru_.push_front(key);
  payloads_[key] = {release, std::move(payload), lru_.begin()};
  unknown_.erase(key);
  while (payload_bytes_ > limits_.payload_cache_bytes && lru_.size() > 1) {
    auto it = payloads_.find(lru_.back());
    forget(it);
    ++evicted_;
  }
}

bool UpdatePublisher::allowed(const std::string& key, double bytes, double now) {
  if (limits_.device_bytes_per_second <= 0) return true;
  if (device_buckets_.size() >= 100000 && device_buckets_.find(key) == device_buckets_.end()) {
    device_buckets_.clear();  // bounded; a device starts again from a full bucket
  }
  auto it = device_buckets_.find(key);
  if (it == device_buckets_.end()) {
    it = device_buckets_
             .emplace(key,
                      TokenBucket(limits_.device_bytes_per_second, limits_.device_bytes_per_second))
             .first;
  }
  return it->second.take(bytes, now);
}

bool UpdatePublisher::may_look_up(const std::string& key, uint64_t release, double now) {
  if (!loader_) return false;
  if (auto u = unknown_.find(key); u != unknown_.end()) {
    if (u->second.first == release && now - u->second.second < kUnknownSeconds) return false;
    unknown_.erase(u);
  }
  if (limits_.device_lookups_per_second <= 0) return true;
  if (lookup_buckets_.size() >= 100000 && lookup_buckets_.find(key) == lookup_buckets_.end()) {
    lookup_buckets_.clear();  // bounded; a device starts again from a full bucket
  }
  auto it = lookup_buckets_.find(key);
  if (it == lookup_buckets_.end()) {
    it = lookup_buckets_.emplace(key, TokenBucket(limits_.device_lookups_per_second, kLookupBurst))
             .first;
  }
  return it->second.take(1, now);
}

std::shared_ptr<const std::string> UpdatePublisher::payload_for(const std::string& fleet,
                                                                const std::string& device,
                                                                uint64_t release, double now) {
  const std::string key = fleet + "/" + device;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = payloads_.find(key); it != payloads_.end() && it->second.release == release) {
      lru_.splice(lru_.begin(), lru_, it->second.use);
      return it->second.payload;
    }
    // Not held (another replica offered it, the LRU evicted it, or a newer release
    // replaced what is held): one lookup, unless the pair is known to be unknown or the
    // device looked up too much.
    if (!may_look_up(key, release, now)) {
      ++lookups_refused_;
      return nullptr;
    }
  }
  ++lookups_;
  auto loaded = loader_(fleet, device, release);
  std::lock_guard<std::mutex> lock(mu_);
  if (!loaded) return nullptr;  // could not look: the device asks again
  if (!*loaded) {
    if (unknown_.size() >= kMaxUnknown) unknown_.clear();
    unknown_[key] = {release, now};
    return nullptr;
  }
  ++loaded_;
  auto it = payloads_.find(key);
  // Kept unless the publisher offered this device a newer release meanwhile.
  if (it == payloads_.end() || it->second.release <= release) keep(key, release, *loaded);
  return *loaded;
}

void UpdatePublisher::on_request(const std::string& topic, const std::string& req) {
  update::TopicName name;
  update::ChunkRequest r;
  if (!update::parse_topic(topic.data(), topic.size(), &name).ok() ||
      name.kind != update::TopicKind::kChunkRequest) {
    return;
  }
  const std::string fleet(name.fleet, name.fleet_size), device(name.device, name.device_size);
  if (const auto st = update::decode_chunk_request(reinterpret_cast<const uint8_t*>(req.data()),
                                                   req.size(), &r);
      !st.ok()) {
    if (rejects_) {
      rejects_->reject(DeviceRejects::kChunkRequest, fleet, device,
                       std::string(st.field) + ": " + update::to_string(st.error));
    }
    return;
  }
  const std::string key = fleet + "/" + device;
  const uint64_t release = r.release, offset = r.offset;
  const auto length = static_cast<uint32_t>(std::min<uint64_t>(r.length, update::kMaxChunkBytes));
  const double now =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!allowed(key, length + 20.0, now)) {
      ++deferred_device_;
      ++deferred_;  // the device asks again after its chunk timeout
      return;
    }
  }
  const auto payload = payload_for(fleet, device, release, now);
  if (!payload) return;  // no such offer outstanding (or not now)
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (bucket_ && !bucket_->take(length + 20.0, now)) {
      ++deferred_;  // over the rate: the device asks again after its chunk timeout
      return;
    }
  }
  if (offset >= payload->size()) return;
  char chunk_topic[update::kMaxTopicBytes];
  if (!update::device_topic(fleet.c_str(), device.c_str(), update::TopicKind::kChunk, chunk_topic,
                            sizeof chunk_topic)
           .ok()) {
    return;
  }
  std::string answer(update::kChunkHeaderBytes, '\0');
  update::encode_chunk_header(release, offset, reinterpret_cast<uint8_t*>(answer.data()),
                              answer.size());
  answer.append(*payload, offset, length);
  try {
    // QoS 0: an answer lost is asked for again after the device's chunk timeout; a PUBACK
    // per chunk on both legs only added packets and held the client's in-flight window
    // (docs/scale.md).
    client_->publish(chunk_topic, answer, 0, false);
    ++chunks_;
    bytes_ += answer.size();
  } catch (const mqtt::exception&) {
    ++chunks_dropped_;  // Paho's queue full or not connected: the device asks again
  }
}

}  // namespace tinyfleet::server
