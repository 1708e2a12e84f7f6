// fleetd's part for the reference firmware's QEMU test (run_reference_firmware_test.cmake):
// on fleetd's account it publishes a signed offer retained on one device's offer topic,
// answers that device's chunk requests from the payload file (chunk_framing.h), and exits
// 0 once the device's status says `Committed` with the offer's release and a telemetry
// window came, or 1 after `seconds` (its lines go to stderr). It clears the retained offer
// and status.
//   serve_offer HOST PORT USER PASSWORD FLEET DEVICE OFFER PAYLOAD RELEASE SECONDS
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "tinyfleet/device_agent/linux/tcp_transport.h"
#include "tinyfleet/firmware/mqtt_client.h"
#include "tinyfleet/update/agent_reasons.h"
#include "tinyfleet/update/chunk_framing.h"
#include "tinyfleet/update/status_message.h"
#include "tinyfleet/update/topics.h"

namespace mqtt = tinyfleet::firmware::mqtt;
namespace update = tinyfleet::update;
using update::TopicKind;

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

struct Server : mqtt::Handler {
  void on_connected(bool) override { ++connected; }
  void on_message(const mqtt::Message& m) override {
    const std::string topic(m.topic, m.topic_size);
    update::ChunkRequest r;
    update::StatusMessage s;
    if (topic == topics[2] && update::decode_chunk_request(m.payload, m.payload_size, &r).ok()) {
      ++requests;
      if (r.release != release || r.offset >= payload.size()) return;
      const size_t n = std::min<size_t>(r.length, payload.size() - r.offset);
      std::string chunk(update::kChunkHeaderBytes, '\0');
      update::encode_chunk_header(r.release, r.offset, reinterpret_cast<uint8_t*>(chunk.data()),
                                  chunk.size());
      chunk += payload.substr(r.offset, n);
      client->publish(topics[1].c_str(), u8(chunk), chunk.size(), 1, false, nullptr);
    } else if (topic == topics[3] && update::decode_status(m.payload, m.payload_size, &s).ok()) {
      std::fprintf(stderr, "serve_offer: status %s, state %s, release %llu %s\n",
                   update::to_string(s.event), update::to_string(s.state),
                   static_cast<unsigned long long>(s.release),
                   update::name_detail(s.detail, s.event, s.refusal));  // as fleetd names it
      if (s.state == update::UpdateState::kCommitted && s.release == release) committed = true;
    } else if (topic == topics[4]) {
      ++telemetry;
    }
  }

  mqtt::MqttClient* client = nullptr;
  std::string topics[5];  // offer, chunk, chunk/req, status, telemetry
  std::string payload;
  uint64_t release = 0;
  int connected = 0, requests = 0, telemetry = 0;
  bool committed = false;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 11) {
    std::fprintf(stderr,
                 "usage: serve_offer HOST PORT USER PASSWORD FLEET DEVICE OFFER PAYLOAD "
                 "RELEASE SECONDS\n");
    return 2;
  }
  Server server;
  server.payload = read_file(argv[8]);
  const std::string offer = read_file(argv[7]);
  server.release = std::stoull(argv[9]);
  const TopicKind kinds[] = {TopicKind::kOffer, TopicKind::kChunk, TopicKind::kChunkRequest,
                             TopicKind::kStatus, TopicKind::kTelemetry};
  for (int i = 0; i < 5; ++i) {
    char t[update::kMaxTopicBytes];
    if (!update::device_topic(argv[5], argv[6], kinds[i], t, sizeof t).ok()) return 2;
    server.topics[i] = t;
  }
  tinyfleet::device_agent::linux_port::TcpTransport tcp(argv[1],
                                                        static_cast<uint16_t>(std::stoi(argv[2])));
  static mqtt::StaticMqttClient<70000, 16384> client(tcp, server);
  server.client = &client;
  mqtt::ClientOptions options;
  const std::string id = std::string("serve-") + argv[5];
  options.connect.client_id = id.c_str();
  options.connect.username = argv[3];
  options.connect.password = argv[4];
  client.start(options);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(std::stoi(argv[10]));
  bool subscribed = false;
  while (std::chrono::steady_clock::now() < end && !(server.committed && server.telemetry > 0)) {
    client.poll();
    if (server.connected > 0 && !subscribed) {
      for (int i = 2; i < 5; ++i) client.subscribe(server.topics[i].c_str(), 1, nullptr);
      client.publish(server.topics[0].c_str(), u8(offer), offer.size(), 1, true, nullptr);
      subscribed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::fprintf(stderr, "serve_offer: %d chunk requests, %d telemetry windows, committed %s\n",
               server.requests, server.telemetry, server.committed ? "yes" : "no");
  for (int i : {0, 3}) client.publish(server.topics[i].c_str(), nullptr, 0, 1, true, nullptr);
  for (int i = 0; i < 200; ++i) {
    client.poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  client.disconnect();
  return server.committed && server.telemetry > 0 ? 0 : 1;
}
