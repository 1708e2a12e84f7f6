// The reference firmware on the Cortex-M4 (QEMU mps2-an386): the agent core over the MQTT
// outbox (firmware/src/mqtt_outbox.cpp) on UART0, which QEMU joins to the broker
// (`-serial tcp:...`). One binary serves any device: at power-up it reads its provisioning
// record (`provision.txt` in QEMU's working directory, through semihosting; see
// tinyfleet/firmware/provisioning.h): the device account, fleet, root key and clock. Its
// records and model slots live on the NOR flash in `flash.bin` beside it (nor_stores.h),
// so a device started again boots what it had committed. Run it under QEMU with
// `-icount shift=0,sleep=on`: it sleeps by WFI when idle (board_sleep.h), and its latency,
// active time and energy are then instruction counts (docs/firmware.md, "Measured cycles").
//   mode=once (ctest firmware_reference_qemu): installs the factory model it carries,
//     takes the one offer retained on its topic, patches, self-tests, switches, runs the
//     sample it carries and publishes a telemetry window, then exits.
//   mode=run (deploy/local/run-firmware-devices.sh, the FirmwareRollout e2e test): serves
//     fleetd's rollouts until QEMU is stopped, running the labelled digits it carries
//     (accuracy probes) every rate_ms and publishing a telemetry window every window_s.
// Output (semihosting): each step; once: "reference firmware: ok (N cases)" or a non-zero
// exit. Any heap allocation after start-up exits 99.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "board_sleep.h"
#include "fixture_constants.h"
#include "heap_trap.h"
#include "instruction_counter.h"
#include "mps2_board.h"
#include "stack_meter.h"
#include "tinyfleet/device_agent/inference_loop.h"
#include "tinyfleet/device_agent/kernels_runner.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/firmware/cmsdk_uart.h"
#include "tinyfleet/firmware/mqtt_outbox.h"
#include "tinyfleet/firmware/nor_semihost.h"
#include "tinyfleet/firmware/nor_stores.h"
#include "tinyfleet/firmware/provisioning.h"
#include "tinyfleet/firmware/sodium_ports.h"
#include "tinyfleet/update/agent_reasons.h"

extern "C" {
extern const unsigned char tf_root_pub[], tf_v1[], tf_input[], tf_samples[];
extern const unsigned int tf_v1_size, tf_input_size, tf_samples_size;
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

firmware::Provisioning g_prov;

using ft::board_ms;
using ft::board_ticks;

// The class (catalog.json, cortex-m4-256k): 80 MHz, 12 mW active.
constexpr uint64_t kClassHz = 80000000;
constexpr uint64_t kClassMhz = kClassHz / 1000000;  // cycles a microsecond
constexpr float kClassActiveMw = 12.0f;

// No RTC on the board: the wall clock is the provisioning record's `now` (the host's
// time at power-up) plus timer 0; without one, the fixture's offers' clock. Timeouts run
// on timer 0 (25 MHz of QEMU's virtual time, which follows real time while the core
// sleeps). Latency and active time are cycles of the class: under `-icount shift=0` a
// timer tick is 40 instructions (instruction_counter.h), each counted as one cycle of
// the class's 80 MHz clock, so they are the same for the same model on every run.
class BoardClock final : public device_agent::Clock {
 public:
  uint64_t now_unix() override {
    return g_prov.now != 0 ? g_prov.now + board_ticks() / 25000000u : ft::kNow;
  }
  uint64_t monotonic_ms() override { return board_ticks() / 25000u; }
  // (Scaled by the MHz, not the Hz: cycles x 1e9 would wrap 64 bits after 18 s.)
  uint64_t monotonic_us() override { return cycles() / kClassMhz; }
  uint64_t active_ns() override { return cycles() * 1000u / kClassMhz; }
  static uint64_t cycles() { return board_ticks() * InstructionCounter::kInstructionsPerTick; }
};

// Energy = measured active time x the class's active power: the time inside inferences
// (g_active_ticks, summed by the loops below) at 12 mW.
uint64_t g_active_ticks = 0;
class ActiveEnergyMeter final : public device_agent::EnergyMeter {
 public:
  bool read_uj(uint64_t* out) override {
    const uint64_t ns =
        g_active_ticks * InstructionCounter::kInstructionsPerTick * 1000u / kClassMhz;
    *out = static_cast<uint64_t>(static_cast<double>(ns) * kClassActiveMw / 1e6);
    return true;
  }
};
ActiveEnergyMeter g_meter;

// One inference through the loop with interrupts masked (its timer ticks are its own
// instructions), its ticks added to the active time.
int timed_infer(device_agent::InferenceLoop& loop, const float* sample, size_t n, int label,
                uint64_t* ticks) {
  const uint64_t before = board_ticks();
  const int top = ft::without_interrupts([&] { return loop.infer(sample, n, label); });
  *ticks = board_ticks() - before;
  g_active_ticks += *ticks;
  return top;
}

firmware::CmsdkUartTransport g_uart = ft::board_uart0();
// The TensorRange workspace, lent to the outbox for offers over its receive buffer.
alignas(16) uint8_t g_workspace[21 * 1024];
firmware::StaticMqttOutbox<1024, 1024> g_outbox(g_uart, g_workspace, sizeof g_workspace);

// The outbox as the agent sees it, noting how much of each release's payload it asked
// for: a delta's payload is a fraction of the artifact it makes.
class CountingOutbox final : public device_agent::Outbox {
 public:
  bool publish_status(const uint8_t* m, size_t n) override { return g_outbox.publish_status(m, n); }
  bool publish_telemetry(const uint8_t* m, size_t n) override {
    return g_outbox.publish_telemetry(m, n);
  }
  bool request_chunk(uint64_t release, uint64_t offset, uint32_t length) override {
    if (release != release_) {
      release_ = release;
      payload_end_ = 0;
    }
    if (offset + length > payload_end_) payload_end_ = offset + length;
    return g_outbox.request_chunk(release, offset, length);
  }
  uint64_t release_ = 0, payload_end_ = 0;
};

CountingOutbox g_counting;
// The agent's records and model slots on the emulated NOR flash (tinyfleet_nor_m4), kept
// in flash.bin in QEMU's working directory: a device started again boots what it had.
const firmware::NorLayout g_layout;
firmware::NorGeometry nor_geometry() {
  firmware::NorGeometry g;
  g.sectors = g_layout.sectors();
  return g;
}
firmware::SemihostFlashFile g_flash_file;
firmware::NorFlash g_flash(g_flash_file, nor_geometry());
firmware::NorRecords g_records(g_flash, g_layout);
// The flash is not memory-mapped: map_slot copies a slot here for the runtime (model
// memory, as the arena is: 16 KB a slot holds the digits models, 3.8 KB).
alignas(16) uint8_t g_map[2][16 * 1024];
firmware::NorSlots g_slots(g_flash, g_layout, g_map[0], g_map[1], sizeof g_map[0]);
BoardClock g_clock;
firmware::Sha256Port g_sha;
firmware::Ed25519Verifier g_verifier;
alignas(16) uint8_t g_arena_a[2048], g_arena_b[2048];
device_agent::KernelsRunner g_runner_a{g_arena_a, sizeof g_arena_a};
device_agent::KernelsRunner g_runner_b{g_arena_b, sizeof g_arena_b};
// Built once the provisioning record is read (its names and key live in g_prov).
alignas(device_agent::UpdateAgent) unsigned char g_agent_bytes[sizeof(device_agent::UpdateAgent)];
device_agent::UpdateAgent* g_agent = nullptr;

bool read_provisioning() {
  static char text[1024];
  const long n = firmware::semihost_read_file("provision.txt", text, sizeof text);
  char error[96];
  if (n <= 0) {
    std::printf("provisioning: cannot read provision.txt (at most %u bytes)\n",
                static_cast<unsigned>(sizeof text - 1));
    return false;
  }
  if (!firmware::parse_provisioning(text, static_cast<size_t>(n), &g_prov, error, sizeof error)) {
    std::printf("provisioning: provision.txt %s\n", error);
    return false;
  }
  if (!g_prov.has_root_key) std::memcpy(g_prov.root_key, tf_root_pub, sizeof g_prov.root_key);
  return true;
}

void make_agent() {
  device_agent::AgentConfig c;
  c.fleet = g_prov.offer_fleet;
  c.device_class = ft::kClass;
  c.device_id = g_prov.device;
  c.root_public_key = g_prov.root_key;
  c.probation_inferences = g_prov.run ? 5 : 1;
  g_agent = new (g_agent_bytes)
      device_agent::UpdateAgent(c, g_records, g_slots, g_clock, g_counting, g_verifier, g_sha,
                                g_runner_a, g_runner_b, g_workspace, sizeof g_workspace);
}

device_agent::InferenceLoop& inference_loop() {
  device_agent::InferenceConfig ic;
  ic.clock_hz = kClassHz;
  ic.active_mw = kClassActiveMw;
  ic.window_ms = g_prov.run ? g_prov.window_s * 1000u : 1;
  static device_agent::InferenceLoop loop(ic, *g_agent, g_clock, g_counting, &g_meter);
  return loop;
}

template <typename F>
bool run_until(F done, uint32_t limit_ms) {
  const uint32_t start = board_ms();
  while (board_ms() - start < limit_ms) {
    g_outbox.poll();
    if (done()) return true;
    ft::board_sleep();
  }
  return false;
}

void start_mqtt() {
  static firmware::mqtt::ClientOptions options;
  options.connect.client_id = g_prov.user;
  options.connect.username = g_prov.user;
  options.connect.password = g_prov.password;
  options.connect.keep_alive_s = 30;
  g_outbox.attach(g_agent);
  g_outbox.start(options);
}

void print_update() {
  const auto& r = g_agent->record();
  std::printf(
      "update: release %llu, state %s, reason \"%s\"; payload %llu B asked for release %llu "
      "(artifact %llu B); offers %u (streamed %u), chunk requests %u, chunks %u\n",
      static_cast<unsigned long long>(r.installed_release), update::to_string(g_agent->state()),
      update::name_detail(r.reason, update::StatusEvent::kState, update::OfferStatus::kOk),
      static_cast<unsigned long long>(g_counting.payload_end_),
      static_cast<unsigned long long>(g_counting.release_),
      static_cast<unsigned long long>(r.installed_size),
      static_cast<unsigned>(g_outbox.counters().offers),
      static_cast<unsigned>(g_outbox.counters().streamed_offers),
      static_cast<unsigned>(g_outbox.counters().chunk_requests),
      static_cast<unsigned>(g_outbox.counters().chunks));
  std::fflush(stdout);  // the host reads the console while the device runs
}

// "boot: release R, model <sha256 of the active slot, checked against the record>".
void print_boot(bool booted) {
  const auto& r = g_agent->record();
  char hex[65] = "none";
  if (booted && g_agent->model_ready()) {
    for (int i = 0; i < 32; ++i) std::snprintf(hex + 2 * i, 3, "%02x", r.installed_sha256[i]);
  }
  std::printf("boot: release %llu, state %s, model %s\n",
              static_cast<unsigned long long>(r.installed_release),
              update::to_string(g_agent->state()), hex);
  std::fflush(stdout);
}

// mode=once: the fixture's offer (release 8) from serve_offer.
void session_once() {
  start_mqtt();
  expect(run_until([] { return g_outbox.client().counters().connects == 1; }, 15000),
         "connected over UART0 with the device account");
  expect(run_until([] { return g_agent->state() == update::UpdateState::kCommitted; }, 60000),
         "took the offer, downloaded, verified, patched, self-tested and switched");
  print_update();
  expect(g_agent->record().installed_release == ft::kDeltaRelease && g_agent->model_ready(),
         "release 8 installed and loaded");

  // The sample it carries through the inference loop; the window goes out at once.
  auto& loop = inference_loop();
  static float sample[64];
  auto& model = g_agent->model();
  for (size_t i = 0; i < tf_input_size && i < 64; ++i) {
    sample[i] = model.input_scale() *
                static_cast<float>(static_cast<int8_t>(tf_input[i]) - model.input_zero_point());
  }
  uint64_t ticks = 0;
  const int top = timed_infer(loop, sample, tf_input_size, -1, &ticks);
  expect(top >= 0, "v2 runs on the sample it carries");
  std::printf("inference: class %d, %llu timer ticks (%llu instructions)\n", top,
              static_cast<unsigned long long>(ticks),
              static_cast<unsigned long long>(ticks * InstructionCounter::kInstructionsPerTick));
  expect(run_until(
             [] {
               inference_loop().poll();  // closes the window once due, publishes it at QoS 0
               return inference_loop().windows_sent() >= 1;
             },
             5000),
         "telemetry window published");
  g_outbox.disconnect();
}

// The labelled digits it carries (make_probe_samples): u32 count, u32 floats per
// sample, then per sample an i32 label and the floats.
struct Samples {
  uint32_t count = 0, floats = 0;
  const unsigned char* first = nullptr;
  bool load() {
    if (tf_samples_size < 8) return false;
    std::memcpy(&count, tf_samples, 4);
    std::memcpy(&floats, tf_samples + 4, 4);
    first = tf_samples + 8;
    return count > 0 && floats > 0 && floats <= 1024 &&
           (tf_samples_size - 8) / (4u + 4u * floats) >= count;
  }
  int get(uint32_t i, float* out) const {
    const unsigned char* p = first + static_cast<size_t>(i) * (4u + 4u * floats);
    int32_t label = 0;
    std::memcpy(&label, p, 4);
    std::memcpy(out, p + 4, 4u * floats);
    return label;
  }
};

// mode=run: fleetd's rollouts until QEMU is stopped.
[[noreturn]] void serve() {
  static Samples samples;
  static float sample[1024];
  if (!samples.load()) {
    std::printf("run: the probe samples are malformed\n");
    std::exit(1);
  }
  auto& loop = inference_loop();
  start_mqtt();
  std::fflush(stdout);
  uint32_t next = board_ms(), report = board_ms(), i = 0, infers = 0, correct = 0;
  uint64_t busy_ticks = 0, last_release = g_agent->record().installed_release;
  update::UpdateState last_state = g_agent->state();
  uint32_t last_connects = 0, last_offers = 0;
  bool last_trusted = g_agent->record().probation_left == 0;
  for (;;) {
    g_outbox.poll();
    loop.poll();
    // Each connect and offer too (a device started again shows what it asked for then),
    // and the end of probation.
    const uint32_t connects = g_outbox.client().counters().connects;
    const uint32_t offers = g_outbox.counters().offers;
    const bool trusted = g_agent->record().probation_left == 0;
    if (g_agent->state() != last_state || g_agent->record().installed_release != last_release ||
        connects != last_connects || offers != last_offers || trusted != last_trusted) {
      last_trusted = trusted;
      last_state = g_agent->state();
      last_release = g_agent->record().installed_release;
      last_connects = connects;
      last_offers = offers;
      print_update();
    }
    const uint32_t now = board_ms();
    if (static_cast<int32_t>(now - next) >= 0) {
      next = now + g_prov.rate_ms;
      if (g_agent->model_ready()) {
        const int label = samples.get(i, sample);
        i = (i + 1) % samples.count;
        uint64_t ticks = 0;
        const int top = timed_infer(loop, sample, samples.floats, label, &ticks);  // a probe
        busy_ticks += ticks;
        ++infers;
        correct += top == label;
      }
    }
    if (now - report >= 30000) {
      report = now;
      const uint64_t mean = infers ? busy_ticks / infers : 0;
      std::printf(
          "run: %u inferences (%u correct), mean %llu timer ticks (%llu instructions), %llu "
          "windows sent\n",
          infers, correct, static_cast<unsigned long long>(mean),
          static_cast<unsigned long long>(mean * InstructionCounter::kInstructionsPerTick),
          static_cast<unsigned long long>(loop.windows_sent()));
      std::fflush(stdout);
    }
    ft::board_sleep();  // until a byte arrives or the next 1 ms tick
  }
}

}  // namespace

int main() {
  InstructionCounter::start();
  ft::board_sleep_init();
  volatile uint32_t anchor = 0;
  const ft::StackMeter stack(reinterpret_cast<uintptr_t>(&anchor) - 256);
  if (!read_provisioning()) return 2;
  std::printf("reference firmware (mps2-an386) as %s in fleet %s (%s mode)\n", g_prov.user,
              g_prov.fleet, g_prov.run ? "run" : "once");
  if (!g_flash_file.open("flash.bin", nor_geometry().bytes())) {
    std::printf("cannot open flash.bin\n");
    return 2;
  }
  make_agent();
  expect(g_outbox.configure(g_prov.fleet, g_prov.user), "device topics");
  // What the flash holds boots; a blank one gets the factory model first (factory=1).
  bool booted = g_agent->boot();
  if (!booted && g_prov.factory) {
    expect(g_agent->install_factory(tf_v1, tf_v1_size), "factory model installed");
    booted = g_agent->boot();
  }
  expect(booted || !g_prov.factory, "booted");
  print_boot(booted);
  lock_heap();
  if (g_prov.run) serve();
  session_once();
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
