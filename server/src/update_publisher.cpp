#include "tinyfleet/server/update_publisher.h"

#include <mqtt/async_client.h>

#include <algorithm>
#include <chrono>

#include "tinyfleet/server/log.h"

namespace tinyfleet::server {

namespace {
constexpr uint32_t kMaxChunk = 64 * 1024;
uint64_t get_le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  return v;
}
void put_le(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
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
  client_ =
      std::make_unique<mqtt::async_client>(uri_, client_id_, mqtt::create_options(MQTTVERSION_5));
  client_->set_message_callback(
      [this](mqtt::const_message_ptr m) { on_request(m->get_topic(), m->get_payload_str()); });
  auto opts = mqtt::connect_options_builder()
                  .mqtt_version(MQTTVERSION_5)
                  .clean_start(true)
                  .user_name(user_)
                  .password(password_)
                  .automatic_reconnect(std::chrono::milliseconds(200), std::chrono::seconds(2))
                  .connect_timeout(std::chrono::seconds(5))
                  .finalize();
  // Subscriptions are restored after a reconnect (clean start drops them).
  client_->set_connected_handler([this](const std::string&) {
    try {
      client_->subscribe("$share/" + share_group_ + "/tinyfleet/v1/+/+/chunk/req", 1);
    } catch (const mqtt::exception&) {
    }
  });
  try {
    client_->connect(opts)->wait();
    client_->subscribe("$share/" + share_group_ + "/tinyfleet/v1/+/+/chunk/req", 1)->wait();
  } catch (const mqtt::exception& e) {
    log::error("publisher.connect", {{"error", e.what()}});
    return false;
  }
  return true;
}

void UpdatePublisher::stop() {
  if (client_ && client_->is_connected()) {
    try {
      client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
  }
}

bool UpdatePublisher::offer(const std::string& fleet, const std::string& device, uint64_t release,
                            const std::string& signed_offer, std::string payload) {
  const std::string prefix = "tinyfleet/v1/" + fleet + "/" + device + "/";
  {
    std::lock_guard<std::mutex> lock(mu_);
    payloads_[prefix] = {release, std::make_shared<const std::string>(std::move(payload))};
  }
  try {
    client_->publish(prefix + "offer", signed_offer, 1, true)->wait();
  } catch (const mqtt::exception& e) {
    log::error("publisher.offer", {{"device", device}, {"error", e.what()}});
    return false;
  }
  return true;
}

void UpdatePublisher::on_request(const std::string& topic, const std::string& req) {
  const std::string suffix = "chunk/req";
  if (topic.size() <= suffix.size() || req.size() != 24 || req.compare(0, 4, "TFCR") != 0) return;
  const std::string prefix = topic.substr(0, topic.size() - suffix.size());
  const uint64_t release = get_le(req, 4, 8), offset = get_le(req, 12, 8);
  const uint32_t length = static_cast<uint32_t>(std::min<uint64_t>(get_le(req, 20, 4), kMaxChunk));
  std::shared_ptr<const std::string> payload;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = payloads_.find(prefix);
    if (it == payloads_.end() || it->second.first != release) return;  // stale or unknown
    payload = it->second.second;
    const double now =
        std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    if (bucket_ && !bucket_->take(length + 20.0, now)) {
      ++deferred_;  // over the rate: the device asks again after its chunk timeout
      return;
    }
  }
  if (offset >= payload->size()) return;
  std::string answer = "TFCK";
  put_le(answer, release, 8);
  put_le(answer, offset, 8);
  answer.append(*payload, offset, length);
  try {
    client_->publish(prefix + "chunk", answer, 1, false);
    ++chunks_;
    bytes_ += answer.size();
  } catch (const mqtt::exception&) {
  }
}

}  // namespace tinyfleet::server
