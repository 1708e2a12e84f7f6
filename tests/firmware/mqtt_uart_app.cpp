// On the Cortex-M4 (QEMU mps2-an386): the firmware's MQTT 3.1.1 client over UART0, which
// QEMU joins to the broker's TCP port (`-serial tcp:127.0.0.1:PORT`, as a modem in
// transparent mode would). With the device account the build was given (TF_MQTT_USER,
// TF_MQTT_PASSWORD, TF_MQTT_FLEET) it connects, subscribes to its offer topic
// (update/topics.h), prints the retained message the test published there, publishes
// a status message (update/status_message.h, QoS 1, retained) and waits for its PUBACK,
// waits for a keep-alive PINGRESP, and disconnects. Output (semihosting): each check,
// the status bytes in hex (the test reads them back with mosquitto_sub), the client's
// RAM, then "mqtt uart: ok (N cases)" or a non-zero exit.
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "heap_trap.h"
#include "instruction_counter.h"
#include "mps2_board.h"
#include "stack_meter.h"
#include "tinyfleet/firmware/cmsdk_uart.h"
#include "tinyfleet/firmware/mqtt_client.h"
#include "tinyfleet/update/status_message.h"
#include "tinyfleet/update/topics.h"

#ifndef TF_MQTT_USER
#define TF_MQTT_USER "unset"
#define TF_MQTT_PASSWORD "unset"
#define TF_MQTT_FLEET "unset"
#endif

namespace {

using namespace tinyfleet;
using namespace tinyfleet::firmware::mqtt;
using firmware::InstructionCounter;

int g_cases = 0, g_failures = 0;
void expect(bool ok, const char* what) {
  ++g_cases;
  if (!ok) ++g_failures;
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
}

using firmware_test::board_ms;

char g_offer_topic[update::kMaxTopicBytes];
char g_status_topic[update::kMaxTopicBytes];

struct Events : Handler {
  void on_connected(bool) override { ++connected; }
  void on_refused(ConnectReturn code) override {
    std::printf("refused: CONNACK %u\n", static_cast<unsigned>(code));
    ++refused;
  }
  void on_disconnected(LinkEvent why) override {
    std::printf("link: %s\n", to_string(why));
    if (why != LinkEvent::kClosedByClient) ++lost;
  }
  void on_message(const Message& m) override {
    const bool own = m.topic_size == std::strlen(g_offer_topic) &&
                     std::memcmp(m.topic, g_offer_topic, m.topic_size) == 0;
    if (!own || offer_size != 0) return;
    offer_size = m.payload_size < sizeof offer - 1 ? m.payload_size : sizeof offer - 1;
    std::memcpy(offer, m.payload, offer_size);
    offer_retained = m.retain;
  }
  void on_suback(uint16_t id, uint8_t code) override {
    suback_id = id;
    suback_code = code;
  }
  void on_puback(uint16_t id) override { puback_id = id; }

  int connected = 0, refused = 0, lost = 0;
  char offer[96] = {};
  size_t offer_size = 0;
  bool offer_retained = false;
  uint16_t suback_id = 0, puback_id = 0;
  uint8_t suback_code = 0xff;
};

firmware::CmsdkUartTransport g_uart = firmware_test::board_uart0();
Events g_events;
// 1 KB each way: a status (<= 160 B) or a chunk request out, an offer's notice or a
// small chunk in; the agent's 8 KB offers stream through it (MqttOutbox, docs/firmware.md).
StaticMqttClient<1024, 1024> g_client(g_uart, g_events);

// Polls until `done()` or `limit_ms`; true if done.
template <typename F>
bool run_until(F done, uint32_t limit_ms) {
  const uint32_t start = board_ms();
  while (board_ms() - start < limit_ms) {
    g_client.poll();
    if (done()) return true;
    if (g_events.refused || g_events.lost) return false;
  }
  return false;
}

void print_hex(const char* label, const uint8_t* data, size_t size) {
  std::printf("%s", label);
  for (size_t i = 0; i < size; ++i) std::printf("%02x", data[i]);
  std::printf("\n");
}

void session() {
  ClientOptions options;
  options.connect.client_id = TF_MQTT_USER;
  options.connect.username = TF_MQTT_USER;
  options.connect.password = TF_MQTT_PASSWORD;
  options.connect.keep_alive_s = 2;  // a PINGREQ after 1.5 s of silence
  options.connect_timeout_ms = 10000;
  g_client.start(options);
  expect(run_until([] { return g_events.connected == 1; }, 15000),
         "connected over UART0 with the device account (CONNACK 0)");
  if (g_client.state() != ClientState::kConnected) return;

  uint16_t sub_id = 0;
  expect(g_client.subscribe(g_offer_topic, 1, &sub_id) == MqttError::kOk, "SUBSCRIBE queued");
  expect(run_until([] { return g_events.suback_id != 0; }, 10000) && g_events.suback_id == sub_id &&
             g_events.suback_code == 1,
         "SUBACK for the offer topic, QoS 1 granted");
  expect(run_until([] { return g_events.offer_size != 0; }, 10000) && g_events.offer_retained,
         "the retained message on the offer topic arrived");
  std::printf("offer message: %.*s\n", static_cast<int>(g_events.offer_size), g_events.offer);

  update::StatusMessage status;
  update::set_text(status.device_class, "cortex-m4-256k");
  status.event = update::StatusEvent::kHello;
  status.state = update::UpdateState::kIdle;
  update::set_text(status.detail, "mqtt 3.1.1 over uart0");
  uint8_t bytes[update::kMaxStatusBytes];
  size_t size = 0;
  expect(update::encode_status(status, bytes, sizeof bytes, &size).ok(), "status encoded");
  uint16_t pub_id = 0;
  expect(g_client.publish(g_status_topic, bytes, size, 1, true, &pub_id) == MqttError::kOk,
         "status PUBLISH queued (QoS 1, retained)");
  expect(run_until([] { return g_events.puback_id != 0; }, 10000) && g_events.puback_id == pub_id,
         "PUBACK for the status");
  print_hex("status sent: ", bytes, size);

  expect(run_until([] { return g_client.counters().pongs >= 1; }, 6000),
         "PINGRESP to the keep-alive PINGREQ");
  g_client.disconnect();
  expect(g_events.lost == 0 && g_events.refused == 0 && g_client.counters().attempts == 1,
         "one connection, never lost");
}

}  // namespace

int main() {
  InstructionCounter::start();
  volatile uint32_t anchor = 0;
  const firmware_test::StackMeter stack(reinterpret_cast<uintptr_t>(&anchor) - 256);
  std::printf("mqtt 3.1.1 over the CMSDK UART0 (mps2-an386) as %s in fleet %s\n", TF_MQTT_USER,
              TF_MQTT_FLEET);
  const bool topics = update::device_topic(TF_MQTT_FLEET, TF_MQTT_USER, update::TopicKind::kOffer,
                                           g_offer_topic, sizeof g_offer_topic)
                          .ok() &&
                      update::device_topic(TF_MQTT_FLEET, TF_MQTT_USER, update::TopicKind::kStatus,
                                           g_status_topic, sizeof g_status_topic)
                          .ok();
  expect(topics, "device topics");
  lock_heap();
  if (topics) session();
  std::printf(
      "ram: MQTT client %u B (1 KB transmit + 1 KB receive buffer), stack high-water %u B\n",
      static_cast<unsigned>(sizeof g_client), static_cast<unsigned>(stack.used()));
  if (g_failures != 0) {
    std::printf("mqtt uart: %d of %d cases FAILED\n", g_failures, g_cases);
    return 1;
  }
  std::printf("mqtt uart: ok (%d cases)\n", g_cases);
  return 0;
}
