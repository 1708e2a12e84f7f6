#include "tinyfleet/server/nats_queue.h"

#include <nats/nats.h>

#include "tinyfleet/server/log.h"
#include "tinyfleet/server/nats_subject.h"
#include "tinyfleet/update/topics.h"

namespace tinyfleet::server {

struct NatsQueue::Impl {
  natsOptions* opts = nullptr;
  natsConnection* conn = nullptr;
  std::vector<natsSubscription*> subs;
  std::vector<std::string> servers;  // kept alive for natsOptions_SetServers
};

namespace {

std::vector<std::string> split_servers(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string s = list.substr(start, end - start);
    while (!s.empty() && s.front() == ' ') s.erase(0, 1);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    if (!s.empty()) out.push_back(s);
    start = end + 1;
  }
  return out;
}

bool failed(natsStatus s, const char* what) {
  if (s == NATS_OK) return false;
  log::error("nats." + std::string(what), {{"error", natsStatus_GetText(s)}});
  return true;
}

}  // namespace

NatsQueue::NatsQueue(NatsQueueOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)), impl_(std::make_unique<Impl>()) {}

NatsQueue::~NatsQueue() {
  stop();
  if (impl_->opts) natsOptions_Destroy(impl_->opts);
}

bool NatsQueue::start(const std::vector<std::string>& mqtt_filters) {
  impl_->servers = split_servers(options_.servers);
  if (impl_->servers.empty()) {
    log::error("nats.options", {{"error", "no server in nats.servers"}});
    return false;
  }
  std::vector<const char*> urls;
  for (const auto& s : impl_->servers) urls.push_back(s.c_str());
  if (failed(natsOptions_Create(&impl_->opts), "options") ||
      failed(natsOptions_SetServers(impl_->opts, urls.data(), static_cast<int>(urls.size())),
             "servers") ||
      failed(natsOptions_SetName(impl_->opts, options_.name.c_str()), "name") ||
      failed(natsOptions_SetMaxReconnect(impl_->opts, -1), "reconnect") ||
      failed(natsOptions_SetReconnectWait(impl_->opts, 200), "reconnect") ||
      failed(natsOptions_SetRetryOnFailedConnect(impl_->opts, true, nullptr, nullptr), "retry")) {
    return false;
  }
  if (!options_.user.empty() &&
      failed(natsOptions_SetUserInfo(impl_->opts, options_.user.c_str(), options_.password.c_str()),
             "user")) {
    return false;
  }
  if (!options_.ca_file.empty() &&
      (failed(natsOptions_SetSecure(impl_->opts, true), "tls") ||
       failed(natsOptions_LoadCATrustedCertificates(impl_->opts, options_.ca_file.c_str()),
              "tls"))) {
    return false;
  }
  natsOptions_SetReconnectedCB(
      impl_->opts,
      [](natsConnection* nc, void* self) {
        auto* q = static_cast<NatsQueue*>(self);
        ++q->reconnects_;
        char url[256] = "";
        natsConnection_GetConnectedUrl(nc, url, sizeof url);
        log::info("nats.reconnected", {{"server", std::string(url)}});
      },
      this);
  natsOptions_SetDisconnectedCB(
      impl_->opts, [](natsConnection*, void*) { log::warn("nats.disconnected", {}); }, nullptr);
  // With retry on, a cluster not yet up is NATS_NOT_YET_CONNECTED: connected later.
  const natsStatus s = natsConnection_Connect(&impl_->conn, impl_->opts);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) return !failed(s, "connect");
  for (const auto& filter : mqtt_filters) {
    natsSubscription* sub = nullptr;
    const std::string subject = mqtt_filter_to_subject(filter);
    const natsMsgHandler handler = [](natsConnection*, natsSubscription*, natsMsg* m, void* self) {
      const char* qos = nullptr;
      const bool from_mqtt = natsMsgHeader_Get(m, "Nmqtt-Pub", &qos) == NATS_OK;
      static_cast<NatsQueue*>(self)->on_message(natsMsg_GetSubject(m), natsMsg_GetData(m),
                                                natsMsg_GetDataLength(m), from_mqtt);
      natsMsg_Destroy(m);
    };
    // No group (one fleetd, mqtt.share_group and nats.queue_group empty): a plain one.
    const natsStatus st =
        options_.queue_group.empty()
            ? natsConnection_Subscribe(&sub, impl_->conn, subject.c_str(), handler, this)
            : natsConnection_QueueSubscribe(&sub, impl_->conn, subject.c_str(),
                                            options_.queue_group.c_str(), handler, this);
    if (failed(st, "subscribe")) return false;
    // The default pending limits (65,536 messages, 64 MB) bound what waits for the handler;
    // past them the server drops messages for this subscription (a slow consumer).
    impl_->subs.push_back(sub);
  }
  log::info("nats.started", {{"servers", options_.servers}, {"queue", options_.queue_group}});
  return true;
}

void NatsQueue::on_message(const char* subject, const char* data, int size, bool from_mqtt) {
  // Only what the MQTT listener forwarded (header Nmqtt-Pub: the publish's QoS, 0 or 1;
  // the payload is the MQTT payload as sent): the ACL lets only devices publish there.
  std::string topic;
  if (!from_mqtt || size < 0 || subject == nullptr ||
      !subject_to_mqtt_topic(subject, std::char_traits<char>::length(subject),
                             update::kMaxTopicBytes - 1, &topic)
           .ok()) {
    ++dropped_;
    return;
  }
  ++delivered_;
  try {  // nothing may leave libnats's thread as an exception
    handler_(topic, std::string(data ? data : "", data ? static_cast<size_t>(size) : 0));
  } catch (const std::exception& e) {
    log::error("nats.message", {{"topic", topic}, {"error", e.what()}});
  }
}

void NatsQueue::stop() {
  for (natsSubscription* sub : impl_->subs) {
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }
  impl_->subs.clear();
  if (impl_->conn) {
    natsConnection_Close(impl_->conn);
    natsConnection_Destroy(impl_->conn);
    impl_->conn = nullptr;
  }
}

}  // namespace tinyfleet::server
