// The power-cut app (ctest firmware_power_cut_qemu, tests/firmware/power_cut_test.py):
// the agent core on NOR flash persisted to the host file flash.bin (semihosting), booting
// from it at every start. `control.txt` in QEMU's working directory says what to do:
//   "factory"        install v1 at the factory (slot 0, release 0) and stop;
//   "run [N]"        boot, print what runs, apply the updates v1 -> v2 -> v3 (offers and
//                    deltas embedded; the outbox serves the chunks the agent asks for);
//                    with N, stop dead before the N-th flash piece (erase or program)
//                    lands and print where: the host then SIGKILLs QEMU, a power cut;
//   "trace"          "run" printing each piece's kind, so the host can aim its cuts.
// Boot line: "BOOT ok=1 release=R slot=S model=vK sha=<hex> record=match output=ok state=..."
// where sha is the SHA-256 of the active slot read back from flash, model the fixture
// version it is (v0: none of them), record whether it is the agent record's hash, output
// whether the model gives that version's host output. "STATUS ..." lines: each failure or
// rollback the agent reports. Exit: 0 at v3, 3 no boot, 4 stuck.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fixture_constants.h"
#include "heap_trap.h"
#include "tinyfleet/device_agent/kernels_runner.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/firmware/nor_semihost.h"
#include "tinyfleet/firmware/nor_stores.h"
#include "tinyfleet/firmware/sodium_ports.h"
#include "tinyfleet/update/agent_reasons.h"
#include "tinyfleet/update/status_message.h"

extern "C" {
extern const unsigned char tf_root_pub[], tf_v1[], tf_v2[], tf_v3[], tf_input[], tf_out1[],
    tf_out2[], tf_out3[], tf_d12[], tf_d23[], tf_offer8[], tf_offer9[], tf_offer10[], tf_offer11[],
    tf_offer12[], tf_offer13[];
extern const unsigned int tf_v1_size, tf_v2_size, tf_v3_size, tf_input_size, tf_out1_size,
    tf_d12_size, tf_d23_size, tf_offer8_size, tf_offer9_size, tf_offer10_size, tf_offer11_size,
    tf_offer12_size, tf_offer13_size;
}

namespace {

using namespace tinyfleet;
namespace ft = tinyfleet::firmware_test;
using device_agent::UpdateAgent;
using update::UpdateState;

struct Offer {
  uint64_t release;
  const unsigned char* bytes;
  const unsigned int* size;
  int base;  // the version it patches
};
const Offer kOffers[] = {
    {8, tf_offer8, &tf_offer8_size, 1},    {9, tf_offer9, &tf_offer9_size, 1},
    {10, tf_offer10, &tf_offer10_size, 1}, {11, tf_offer11, &tf_offer11_size, 2},
    {12, tf_offer12, &tf_offer12_size, 2}, {13, tf_offer13, &tf_offer13_size, 2}};
const unsigned char* const kVersions[4] = {nullptr, tf_v1, tf_v2, tf_v3};
const unsigned int* const kVersionSizes[4] = {nullptr, &tf_v1_size, &tf_v2_size, &tf_v3_size};
const unsigned char* const kOutputs[4] = {nullptr, tf_out1, tf_out2, tf_out3};

firmware::Sha256Port g_sha;
firmware::Ed25519Verifier g_verifier;
uint8_t g_version_sha[4][32];

// Serves the chunks the agent asks for from the delta of the release (as the broker would).
class ChunkOutbox final : public device_agent::Outbox {
 public:
  // Prints every failure the agent reports: the test accepts only those a cut explains.
  bool publish_status(const uint8_t* data, size_t size) override {
    update::StatusMessage m;
    if (!update::decode_status(data, size, &m).ok()) {
      std::printf("STATUS undecodable\n");
    } else if (m.event == update::StatusEvent::kError ||
               m.event == update::StatusEvent::kOfferRefused ||
               (m.event == update::StatusEvent::kState &&
                (m.state == UpdateState::kRolledBack || m.state == UpdateState::kNoModel))) {
      std::printf("STATUS event=%s state=%s failed=%llu detail=\"%s\"\n",
                  update::to_string(m.event), update::to_string(m.state),
                  static_cast<unsigned long long>(m.failed_release),
                  update::name_detail(m.detail, m.event, m.refusal));
    }
    return true;
  }
  bool request_chunk(uint64_t release, uint64_t offset, uint32_t length) override {
    pending_ = true;
    release_ = release;
    offset_ = offset;
    length_ = length;
    return true;
  }
  void serve(UpdateAgent& agent) {
    while (pending_) {
      pending_ = false;
      const bool second = release_ >= 11;
      const unsigned char* payload = second ? tf_d23 : tf_d12;
      const unsigned int size = second ? tf_d23_size : tf_d12_size;
      if (offset_ > size || length_ > size - offset_) return;
      agent.on_chunk(release_, offset_, payload + offset_, length_);
    }
  }

 private:
  bool pending_ = false;
  uint64_t release_ = 0, offset_ = 0;
  uint32_t length_ = 0;
};

class FixedClock final : public device_agent::Clock {
 public:
  uint64_t now_unix() override { return ft::kNow; }
  uint64_t monotonic_ms() override { return 0; }
};

// Where the cuts land: each flash piece's kind, and the cut itself.
UpdateAgent* g_agent = nullptr;
firmware::NorFlash* g_flash = nullptr;
uint64_t g_cut_at = 0;
bool g_trace = false;
char g_trace_buf[24 * 1024];
size_t g_trace_len = 0;
UpdateState g_next = UpdateState::kIdle;
uint8_t g_last_active = device_agent::kNoSlot;
bool g_swap = false;  // the record being written switches the active slot

// e/r/w: record erase, program, program of a record that switches slots (the swap);
// E/S: slot erase, program; X/T: staging erase, program.
char kind(firmware::NorOp op) {
  const char* c = g_flash->context();
  const bool erase = op == firmware::NorOp::kErase;
  if (std::strncmp(c, "record", 6) == 0) return erase ? 'e' : (g_swap ? 'w' : 'r');
  if (std::strncmp(c, "slot", 4) == 0) return erase ? 'E' : 'S';
  return erase ? 'X' : 'T';
}

void on_piece(firmware::NorOp op, uint32_t addr, uint64_t n) {
  if (g_trace && g_trace_len < sizeof g_trace_buf) g_trace_buf[g_trace_len++] = kind(op);
  if (n != g_cut_at) return;
  std::printf("CUT op=%llu kind=%c %s %s at 0x%05lx state=%s next=%s\n",
              static_cast<unsigned long long>(n), kind(op),
              op == firmware::NorOp::kErase ? "erase" : "program", g_flash->context(),
              static_cast<unsigned long>(addr), update::to_string(g_agent->state()),
              update::to_string(g_next));
  std::fflush(stdout);
  for (;;) asm volatile("cpsid i\n wfi");  // the power is gone: nothing more lands
}

void before_persist(UpdateState next) {
  g_next = next;
  g_swap = g_agent->record().active_slot != g_last_active;
  g_last_active = g_agent->record().active_slot;
}

void digest(const uint8_t* data, size_t size, uint8_t out[32]) {
  g_sha.reset();
  g_sha.update(data, size);
  g_sha.finish(out);
}

// What the device boots, checked from flash: the active slot's SHA-256, which fixture
// version that is, whether the agent's record names that hash, and the model's output.
int report_boot(UpdateAgent& agent, firmware::NorSlots& slots, bool booted) {
  const uint32_t torn_staging = slots.staging_torn_pages();
  const auto& r = agent.record();
  uint8_t sha[32] = {};
  bool read = r.active_slot != device_agent::kNoSlot && slots.slot_size(r.active_slot) >= 0;
  if (read) {
    const long size = slots.slot_size(r.active_slot);
    uint8_t buf[256];
    g_sha.reset();
    for (long off = 0; read && off < size; off += sizeof buf) {
      const size_t n = static_cast<size_t>(size - off < 256 ? size - off : 256);
      read = slots.read_slot(r.active_slot, static_cast<uint64_t>(off), buf, n);
      g_sha.update(buf, n);
    }
    g_sha.finish(sha);
  }
  int model = 0;
  for (int v = 1; v <= 3; ++v) {
    if (read && std::memcmp(sha, g_version_sha[v], 32) == 0) model = v;
  }
  const char* output = "none";
  if (booted && agent.model_ready() && model > 0) {
    int8_t out[16];
    const bool ran = agent.model().output_bytes() == tf_out1_size &&
                     agent.model().run(reinterpret_cast<const int8_t*>(tf_input), out);
    output = ran && std::memcmp(out, kOutputs[model], tf_out1_size) == 0 ? "ok" : "WRONG";
  }
  char hex[65];
  for (int i = 0; i < 32; ++i) std::snprintf(hex + 2 * i, 3, "%02x", sha[i]);
  std::printf(
      "BOOT ok=%d torn_staging_pages=%u release=%llu slot=%u model=v%d sha=%s record=%s "
      "output=%s state=%s reason=\"%s\"\n",
      booted ? 1 : 0, static_cast<unsigned>(torn_staging),
      static_cast<unsigned long long>(r.installed_release), static_cast<unsigned>(r.active_slot),
      model, hex, read && std::memcmp(sha, r.installed_sha256, 32) == 0 ? "match" : "MISMATCH",
      output, update::to_string(r.state),
      update::name_detail(r.reason, update::StatusEvent::kState, update::OfferStatus::kOk));
  return model;
}

void pass_probation(UpdateAgent& agent) {
  if (agent.state() != UpdateState::kCommitted || agent.record().probation_left == 0 ||
      !agent.model_ready()) {
    return;
  }
  int8_t out[16];
  agent.inference_starting();
  const bool ok = agent.model().run(reinterpret_cast<const int8_t*>(tf_input), out);
  agent.inference_done(ok, 0);
}

bool installed(const UpdateAgent& agent, int version) {
  return std::memcmp(agent.record().installed_sha256, g_version_sha[version], 32) == 0;
}

// "The server": the first offer the device can take (its base installed, above every
// release it has seen, not one that failed here).
const Offer* next_offer(const UpdateAgent& agent) {
  const auto& r = agent.record();
  const uint64_t floor =
      r.highest_release > r.installed_release ? r.highest_release : r.installed_release;
  for (const Offer& o : kOffers) {
    if (installed(agent, o.base) && o.release > floor && o.release != r.failed_release) return &o;
  }
  return nullptr;
}

device_agent::AgentConfig config() {
  device_agent::AgentConfig c;
  c.fleet = ft::kFleet;
  c.device_class = ft::kClass;
  c.root_public_key = tf_root_pub;
  c.device_id = ft::kDevice;
  c.probation_inferences = 1;  // one inference after each switch, so cuts hit probation too
  return c;
}

firmware::NorLayout g_layout;
firmware::SemihostFlashFile g_file;
// Semihosting flash is not memory-mapped: map_slot copies a slot into SRAM.
alignas(16) uint8_t g_map[2][40 * 1024];
alignas(16) uint8_t g_workspace[21 * 1024];  // TensorRange: 20 976 B
alignas(16) uint8_t g_arena_a[2048], g_arena_b[2048];

}  // namespace

int main() {
  std::printf("power-cut app: the agent on NOR flash (flash.bin)\n");
  lock_heap();  // stdio's buffer is taken: from here any allocation exits with 99
  char control[64];
  if (firmware::semihost_read_file("control.txt", control, sizeof control) < 0) {
    std::printf("no control.txt\n");
    return 2;
  }
  const bool factory = std::strncmp(control, "factory", 7) == 0;
  g_trace = std::strncmp(control, "trace", 5) == 0;
  if (std::strncmp(control, "run ", 4) == 0) g_cut_at = std::strtoull(control + 4, nullptr, 10);
  firmware::NorGeometry geometry;
  geometry.sectors = g_layout.sectors();
  if (!g_file.open("flash.bin", geometry.bytes())) {
    std::printf("cannot open flash.bin\n");
    return 2;
  }
  static firmware::NorFlash flash(g_file, geometry);
  g_flash = &flash;
  flash.set_hook(on_piece);
  static firmware::NorRecords records(flash, g_layout);
  static firmware::NorSlots slots(flash, g_layout, g_map[0], g_map[1], sizeof g_map[0]);
  static FixedClock clock;
  static ChunkOutbox outbox;
  static device_agent::KernelsRunner runner_a{g_arena_a, sizeof g_arena_a};
  static device_agent::KernelsRunner runner_b{g_arena_b, sizeof g_arena_b};
  static UpdateAgent agent(config(), records, slots, clock, outbox, g_verifier, g_sha, runner_a,
                           runner_b, g_workspace, sizeof g_workspace);
  g_agent = &agent;
  for (int v = 1; v <= 3; ++v) digest(kVersions[v], *kVersionSizes[v], g_version_sha[v]);

  if (factory) {
    const bool ok = agent.install_factory(tf_v1, tf_v1_size) && agent.boot();
    std::printf("FACTORY %s (v1 in slot 0, %llu flash pieces)\n", ok ? "ok" : "FAILED",
                static_cast<unsigned long long>(flash.ops()));
    return ok ? 0 : 3;
  }
  device_agent::AgentRecord before;
  if (records.load("agent-state", reinterpret_cast<uint8_t*>(&before), sizeof before) > 0) {
    g_last_active = before.active_slot;
  }
  agent.before_persist = before_persist;
  const bool booted = agent.boot();
  report_boot(agent, slots, booted);
  if (!booted) return 3;
  outbox.serve(agent);  // a download resumed by boot()
  for (int round = 0; round < 8 && !installed(agent, 3); ++round) {
    pass_probation(agent);
    const Offer* o = next_offer(agent);
    if (!o) break;
    agent.on_offer(o->bytes, *o->size);
    outbox.serve(agent);
  }
  pass_probation(agent);
  const auto& r = agent.record();
  std::printf("DONE release=%llu v3=%d state=%s failed=%llu reason=\"%s\" pieces=%llu\n",
              static_cast<unsigned long long>(r.installed_release), installed(agent, 3) ? 1 : 0,
              update::to_string(r.state), static_cast<unsigned long long>(r.failed_release),
              update::name_detail(r.reason, update::StatusEvent::kState, update::OfferStatus::kOk),
              static_cast<unsigned long long>(flash.ops()));
  if (g_trace) {
    for (size_t i = 0; i < g_trace_len; i += 100) {
      std::printf("TRACE %.*s\n", static_cast<int>(g_trace_len - i < 100 ? g_trace_len - i : 100),
                  g_trace_buf + i);
    }
  }
  return installed(agent, 3) && r.probation_left == 0 ? 0 : 4;
}
