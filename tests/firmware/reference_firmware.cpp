// The reference firmware on the Cortex-M4 (QEMU mps2-an386): the agent core over the MQTT
// outbox (firmware/src/mqtt_outbox.cpp) on UART0, which QEMU joins to the broker
// (`-serial tcp:...`). It installs the factory model it carries (digits_cnn v1 compiled for
// cortex-m4-256k, embedded by the build from FIXTURE), boots it, connects with the device account
// given at build time (TF_MQTT_USER, TF_MQTT_PASSWORD, TF_MQTT_FLEET), takes the signed offer
// retained on its offer topic, asks for the payload chunk by chunk, verifies, patches the
// TensorRange delta into the other slot (RAM slot stores), self-tests, switches, runs the
// sample it carries through the inference loop and publishes a telemetry window whose
// active time the board timer measured. Output (semihosting): each step, then
// "reference firmware: ok (N cases)" or a non-zero exit; any heap allocation after
// start-up exits 99.
#include <cstdio>
#include <cstring>

#include "fixture_constants.h"
#include "heap_trap.h"
#include "instruction_counter.h"
#include "mps2_board.h"
#include "ram_ports.h"
#include "stack_meter.h"
#include "tinyfleet/device_agent/inference_loop.h"
#include "tinyfleet/device_agent/kernels_runner.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/firmware/cmsdk_uart.h"
#include "tinyfleet/firmware/mqtt_outbox.h"
#include "tinyfleet/firmware/sodium_ports.h"

#ifndef TF_MQTT_USER
#define TF_MQTT_USER "unset"
#define TF_MQTT_PASSWORD "unset"
#define TF_MQTT_FLEET "unset"
#endif

extern "C" {
extern const unsigned char tf_root_pub[], tf_v1[], tf_input[];
extern const unsigned int tf_v1_size, tf_input_size;
}

namespace {

using namespace tinyfleet;
namespace ft = tinyfleet::firmware_test;
using firmware::InstructionCounter;

int g_cases = 0, g_failures = 0;
void expect(bool ok, const char* what) {
  ++g_cases;
  if (!ok) ++g_failures;
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
}

using ft::board_ms;
using ft::board_ticks;

// The wall clock of the fixture's offers (no RTC on the board); time from timer 0.
class BoardClock final : public device_agent::Clock {
 public:
  uint64_t now_unix() override { return ft::kNow; }
  uint64_t monotonic_ms() override { return board_ticks() / 25000u; }
  uint64_t monotonic_us() override { return board_ticks() / 25u; }
  uint64_t active_ns() override { return board_ticks() * 40u; }
};

firmware::CmsdkUartTransport g_uart = ft::board_uart0();
// The TensorRange workspace, lent to the outbox for offers over its receive buffer.
alignas(16) uint8_t g_workspace[21 * 1024];
firmware::StaticMqttOutbox<1024, 1024> g_outbox(g_uart, g_workspace, sizeof g_workspace);
ft::RamRecords g_records;
ft::RamSlots g_slots;
BoardClock g_clock;
firmware::Sha256Port g_sha;
firmware::Ed25519Verifier g_verifier;
alignas(16) uint8_t g_arena_a[2048], g_arena_b[2048];
device_agent::KernelsRunner g_runner_a{g_arena_a, sizeof g_arena_a};
device_agent::KernelsRunner g_runner_b{g_arena_b, sizeof g_arena_b};

device_agent::AgentConfig agent_config() {
  device_agent::AgentConfig c;
  c.fleet = ft::kFleet;  // the fleet and device the offer names (its topics are the account's)
  c.device_class = ft::kClass;
  c.device_id = ft::kDevice;
  c.root_public_key = tf_root_pub;
  c.probation_inferences = 1;
  return c;
}
device_agent::UpdateAgent g_agent(agent_config(), g_records, g_slots, g_clock, g_outbox, g_verifier,
                                  g_sha, g_runner_a, g_runner_b, g_workspace, sizeof g_workspace);

template <typename F>
bool run_until(F done, uint32_t limit_ms) {
  const uint32_t start = board_ms();
  while (board_ms() - start < limit_ms) {
    g_outbox.poll();
    if (done()) return true;
  }
  return false;
}

void session() {
  static firmware::mqtt::ClientOptions options;
  options.connect.client_id = TF_MQTT_USER;
  options.connect.username = TF_MQTT_USER;
  options.connect.password = TF_MQTT_PASSWORD;
  options.connect.keep_alive_s = 30;
  g_outbox.attach(&g_agent);
  g_outbox.start(options);
  expect(run_until([] { return g_outbox.client().counters().connects == 1; }, 15000),
         "connected over UART0 with the device account");
  expect(run_until([] { return g_agent.state() == update::UpdateState::kCommitted; }, 60000),
         "took the offer, downloaded, verified, patched, self-tested and switched");
  std::printf(
      "update: release %llu, state %s, reason \"%s\"; offers %u (streamed %u), "
      "chunk requests %u, chunks %u\n",
      static_cast<unsigned long long>(g_agent.record().installed_release),
      update::to_string(g_agent.state()), g_agent.record().reason,
      static_cast<unsigned>(g_outbox.counters().offers),
      static_cast<unsigned>(g_outbox.counters().streamed_offers),
      static_cast<unsigned>(g_outbox.counters().chunk_requests),
      static_cast<unsigned>(g_outbox.counters().chunks));
  expect(g_agent.record().installed_release == ft::kDeltaRelease && g_agent.model_ready(),
         "release 8 installed and loaded");

  // The sample it carries through the inference loop; the window goes out at once.
  device_agent::InferenceConfig ic;
  ic.clock_hz = 80000000;  // cortex-m4-256k (catalog.json): 80 MHz, 12 mW active
  ic.active_mw = 12.0f;
  ic.window_ms = 1;
  static device_agent::InferenceLoop loop(ic, g_agent, g_clock, g_outbox);
  static float sample[64];
  auto& model = g_agent.model();
  for (size_t i = 0; i < tf_input_size && i < 64; ++i) {
    sample[i] = model.input_scale() *
                static_cast<float>(static_cast<int8_t>(tf_input[i]) - model.input_zero_point());
  }
  const uint64_t before = board_ticks();
  const int top = loop.infer(sample, tf_input_size, -1);
  const uint64_t ticks = board_ticks() - before;
  expect(top >= 0, "v2 runs on the sample it carries");
  std::printf("inference: class %d, %llu timer ticks (%llu ns)\n", top,
              static_cast<unsigned long long>(ticks), static_cast<unsigned long long>(ticks * 40));
  expect(run_until(
             [] {
               loop.poll();  // closes the window once it is due, publishes it at QoS 0
               return loop.windows_sent() >= 1;
             },
             5000),
         "telemetry window published");
  g_outbox.disconnect();
}

}  // namespace

int main() {
  InstructionCounter::start();
  volatile uint32_t anchor = 0;
  const ft::StackMeter stack(reinterpret_cast<uintptr_t>(&anchor) - 256);
  std::printf("reference firmware (mps2-an386) as %s in fleet %s\n", TF_MQTT_USER, TF_MQTT_FLEET);
  expect(g_outbox.configure(TF_MQTT_FLEET, TF_MQTT_USER), "device topics");
  expect(g_agent.install_factory(tf_v1, tf_v1_size) && g_agent.boot(),
         "factory model installed and booted");
  lock_heap();
  session();
  std::printf("ram: outbox %u B, UpdateAgent %u B, stack high-water %u B\n",
              static_cast<unsigned>(sizeof g_outbox),
              static_cast<unsigned>(sizeof(device_agent::UpdateAgent)),
              static_cast<unsigned>(stack.used()));
  if (g_failures != 0) {
    std::printf("reference firmware: %d of %d cases FAILED\n", g_failures, g_cases);
    return 1;
  }
  std::printf("reference firmware: ok (%d cases)\n", g_cases);
  return 0;
}
