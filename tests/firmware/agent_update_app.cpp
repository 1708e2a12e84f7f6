// On the Cortex-M4 (QEMU mps2-an386, -icount shift=0): the agent core applies a signed
// v1 -> v2 TensorRange delta made on the host. Device A installs v1 at the factory, boots
// and runs it (the host's output bytes), takes the offer, downloads the chunks it asks
// for, verifies the payload hash, patches into the other slot, self-tests v2 with the
// kernels runtime and switches; after a restart it boots v2. Device B gets the same
// payload with one byte changed: it refuses it and keeps running v1. Prints instruction
// counts (offer check, download + patch + self-test, one inference) and the RAM the
// agent used, then "agent update: ok (N cases)" or exits non-zero.
#include <cstdio>
#include <cstring>

#include "fixture_constants.h"
#include "instruction_counter.h"
#include "ram_ports.h"
#include "stack_meter.h"
#include "tinyfleet/device_agent/inference_loop.h"
#include "tinyfleet/device_agent/kernels_runner.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/firmware/sodium_ports.h"
#include "tinyfleet/update/agent_reasons.h"
#include "tinyfleet/update/offer.h"

extern "C" {
extern const unsigned char tf_root_pub[], tf_v1[], tf_input[], tf_v1_output[], tf_delta[],
    tf_delta_offer[], tf_revoked_offer[], tf_old_offer[], tf_stranger_offer[], tf_digits_v1[],
    tf_digits_v1_output[], tf_digits_delta[], tf_digits_offer[];
extern const unsigned int tf_v1_size, tf_input_size, tf_v1_output_size, tf_delta_size,
    tf_delta_offer_size, tf_revoked_offer_size, tf_old_offer_size, tf_stranger_offer_size,
    tf_digits_v1_size, tf_digits_v1_output_size, tf_digits_delta_size, tf_digits_offer_size;
}

namespace {

using namespace tinyfleet;
namespace ft = tinyfleet::firmware_test;
using firmware::InstructionCounter;

int g_cases = 0, g_failures = 0;
void expect(bool ok, const char* device, const char* what) {
  ++g_cases;
  if (!ok) ++g_failures;
  std::printf("%s %s: %s\n", ok ? "ok  " : "FAIL", device, what);
}

// The event, refusal code and detail of a status the agent published, read at their
// offsets (docs/update-protocol.md) rather than with update::decode_status, which a device
// never needs: the footprint counts what the agent links, not the test's reader.
struct StatusPeek {
  bool ok = false;
  update::StatusEvent event = update::StatusEvent::kState;
  update::OfferStatus refusal = update::OfferStatus::kOk;
  char detail[update::kMaxDetailBytes + 1] = {};
};
StatusPeek peek_status(const uint8_t* data, size_t size) {
  StatusPeek p;
  size_t at = update::kHeaderBytes;
  if (size <= at) return p;
  at += 1 + data[at];  // device class
  if (size < at + 4 + 8 + 32 + 8 + 8 + 1) return p;
  p.event = static_cast<update::StatusEvent>(data[at]);
  p.refusal = static_cast<update::OfferStatus>(data[at + 2]);
  at += 4 + 8 + 32 + 8 + 8;
  const size_t n = data[at];
  if (n > update::kMaxDetailBytes || size < at + 1 + n) return p;
  std::memcpy(p.detail, data + at + 1, n);
  p.detail[n] = '\0';
  p.ok = true;
  return p;
}

// Serves the chunks the agent asks for from the payload (as the broker would).
class ChunkOutbox final : public device_agent::Outbox {
 public:
  ChunkOutbox(const uint8_t* payload, size_t size) : payload_(payload), size_(size) {}
  bool publish_status(const uint8_t* data, size_t size) override {
    ++statuses;
    last = peek_status(data, size);
    if (last.ok) last_refusal = last.refusal;
    return true;
  }
  bool request_chunk(uint64_t release, uint64_t offset, uint32_t length) override {
    pending = true;
    release_ = release;
    offset_ = offset;
    length_ = length;
    ++requests;
    return true;
  }
  // Answers the outstanding requests until the agent asks for no more.
  void serve(device_agent::UpdateAgent& agent) {
    while (pending) {
      pending = false;
      if (offset_ + length_ > size_) return;
      agent.on_chunk(release_, offset_, payload_ + offset_, length_);
    }
  }
  bool pending = false;
  int statuses = 0, requests = 0;
  StatusPeek last;
  update::OfferStatus last_refusal = update::OfferStatus::kOk;

 private:
  const uint8_t* payload_;
  size_t size_;
  uint64_t release_ = 0, offset_ = 0;
  uint32_t length_ = 0;
};

// The wall clock of the offers (ft::kNow) that a tamper case moves past an offer's expiry.
class MovableClock final : public device_agent::Clock {
 public:
  uint64_t now_unix() override { return now; }
  uint64_t monotonic_ms() override { return 0; }
  uint64_t now = ft::kNow;
};

struct Device {
  Device(const uint8_t* payload, size_t size) : outbox(payload, size) {}
  ft::RamRecords records;
  ft::RamSlots slots;
  MovableClock clock;
  ChunkOutbox outbox;
  alignas(16) uint8_t arena_a[2048];
  alignas(16) uint8_t arena_b[2048];
  device_agent::KernelsRunner runner_a{arena_a, sizeof arena_a};
  device_agent::KernelsRunner runner_b{arena_b, sizeof arena_b};
};

firmware::Sha256Port g_sha;
firmware::Ed25519Verifier g_verifier;
alignas(16) uint8_t g_workspace[21 * 1024];  // TensorRange: 20 976 B
uint8_t g_tampered[1024];

device_agent::AgentConfig config() {
  device_agent::AgentConfig c;
  c.fleet = ft::kFleet;
  c.device_class = ft::kClass;
  c.root_public_key = tf_root_pub;
  c.device_id = ft::kDevice;
  c.probation_inferences = 1;  // the one inference below passes it, so a restart keeps v2
  return c;
}

bool output_is(device_agent::UpdateAgent& agent, const uint8_t* expected, size_t size) {
  int8_t out[64];
  auto& model = agent.model();
  if (!agent.model_ready() || model.output_bytes() != size || size > sizeof out ||
      !model.run(reinterpret_cast<const int8_t*>(tf_input), out)) {
    return false;
  }
  return std::memcmp(out, expected, size) == 0;
}

Device g_a(tf_delta, tf_delta_size);
Device g_b(g_tampered, tf_delta_size);
Device g_c(tf_delta, tf_delta_size);
Device g_d(tf_digits_delta, tf_digits_delta_size);
// The fixture model's counts, the bench's comparison.
uint64_t g_chain_n = 0, g_check_n = 0, g_apply_n = 0, g_infer_n = 0;

// A tampered offer: refused with its code (and no detail: fleetd names the code),
// nothing requested, the installed release and its sha256 unchanged, and inference still
// gives the old model's output bytes.
void expect_refused(device_agent::UpdateAgent& agent, Device& d, const uint8_t* offer, size_t size,
                    update::OfferStatus why, const uint8_t* output, size_t output_size,
                    const char* what) {
  const int requests = d.outbox.requests;
  const uint64_t release = agent.record().installed_release;
  uint8_t sha[32];
  std::memcpy(sha, agent.record().installed_sha256, 32);
  d.outbox.last = StatusPeek{};
  agent.on_offer(offer, size);
  const StatusPeek& st = d.outbox.last;
  // kNotNewer is the one refusal the agent keeps to itself: a retained offer it already
  // installed comes back on every reconnect. Its reason is check_offer's (asked below).
  const bool refused = why == update::OfferStatus::kNotNewer
                           ? !st.ok
                           : st.ok && st.event == update::StatusEvent::kOfferRefused &&
                                 st.refusal == why && st.detail[0] == '\0';
  const bool kept = d.outbox.requests == requests && agent.record().installed_release == release &&
                    std::memcmp(agent.record().installed_sha256, sha, 32) == 0 &&
                    output_is(agent, output, output_size);
  char line[160];
  std::snprintf(line, sizeof line, "%s: refused (%s %u), release %u and its sha256 keep running",
                what, st.ok ? "refusal code" : "no status: not news, code",
                static_cast<unsigned>(why), static_cast<unsigned>(release));
  expect(refused && kept, "C", line);
}

void update_device_a() {
  static device_agent::UpdateAgent agent(config(), g_a.records, g_a.slots, g_a.clock, g_a.outbox,
                                         g_verifier, g_sha, g_a.runner_a, g_a.runner_b, g_workspace,
                                         sizeof g_workspace);
  expect(agent.install_factory(tf_v1, tf_v1_size) && agent.boot(), "A",
         "factory v1 installed, booted, model loaded");
  expect(output_is(agent, tf_v1_output, tf_v1_output_size), "A",
         "v1 on the target gives the host runtime's output bytes");

  // The offer carries the root chain v1 -> v2 (the root rotated): walked from the pinned key.
  static update::TrustedRoot trusted;
  update::pin_root(tf_root_pub, &trusted);
  bool advanced = false;
  update::RootStatus why;
  update::OfferStatus walked = update::OfferStatus::kMalformed;
  const uint64_t chain_n = firmware::count_instructions([&] {
    walked = update::apply_offer_root_chain(tf_delta_offer, tf_delta_offer_size, trusted,
                                            g_verifier, &advanced, &why);
  });
  expect(walked == update::OfferStatus::kOk && trusted.version == 2, "A",
         "walks the offer's root chain from the pinned key to the rotated root (v2)");
  update::DeviceIdentity id{ft::kFleet, ft::kClass, 0, tf_root_pub, ft::kDevice, &trusted};
  update::CheckedOffer checked;
  const uint64_t check_n = firmware::count_instructions([&] {
    checked = update::check_offer(tf_delta_offer, tf_delta_offer_size, id, ft::kNow, g_verifier);
  });
  expect(checked.status == update::OfferStatus::kOk, "A", "delta offer verifies");
  update::DeviceIdentity pinned_only{ft::kFleet, ft::kClass, 0, tf_root_pub, ft::kDevice};
  expect(update::check_offer(tf_delta_offer, tf_delta_offer_size, pinned_only, ft::kNow, g_verifier)
                 .status == update::OfferStatus::kBadCertificate,
         "A", "without the chain the new root's certificate is refused");

  const uint64_t apply_n = firmware::count_instructions([&] {
    agent.on_offer(tf_delta_offer, tf_delta_offer_size);
    g_a.outbox.serve(agent);
  });
  const uint32_t expected_chunks = (tf_delta_size + ft::kDeltaChunkSize - 1) / ft::kDeltaChunkSize;
  expect(g_a.outbox.requests == static_cast<int>(expected_chunks), "A",
         "downloaded the payload chunk by chunk");
  expect(agent.state() == update::UpdateState::kCommitted &&
             agent.record().installed_release == ft::kDeltaRelease &&
             agent.record().active_slot == 1 && agent.record().previous_slot == 0,
         "A", "patched into slot 1, self-tested, switched to release 8");
  const auto* m = agent.manifest();
  const auto* expected =
      m && m->self_tests() ? m->self_tests()->Get(0)->expected_output() : nullptr;
  uint64_t infer_n = 0;
  bool v2_ok = false;
  infer_n = firmware::count_instructions([&] {
    v2_ok = expected &&
            output_is(agent, reinterpret_cast<const uint8_t*>(expected->data()), expected->size());
  });
  expect(v2_ok, "A", "v2 runs and gives the output the offer's self-test expects");
  expect(std::memcmp(agent.record().installed_sha256, m->target_sha256()->data(), 32) == 0, "A",
         "installed sha256 is the offer's target");

  // The inference loop on v2 (floats in, the model's quantization), one telemetry poll.
  static device_agent::InferenceLoop loop(device_agent::InferenceConfig{}, agent, g_a.clock,
                                          g_a.outbox);
  static float sample[64];
  for (size_t i = 0; i < tf_input_size && i < 64; ++i) {
    sample[i] = agent.model().input_scale() * static_cast<float>(static_cast<int8_t>(tf_input[i]) -
                                                                 agent.model().input_zero_point());
  }
  const int top = loop.infer(sample, tf_input_size, 3);
  loop.poll();
  expect(top == 3 && loop.current_window_inferences() == 1, "A",
         "the inference loop runs v2 (class 3) and counts it in the window");

  // A restart: the record, not RAM, says what runs.
  static device_agent::UpdateAgent rebooted(config(), g_a.records, g_a.slots, g_a.clock, g_a.outbox,
                                            g_verifier, g_sha, g_a.runner_a, g_a.runner_b,
                                            g_workspace, sizeof g_workspace);
  expect(
      rebooted.boot() && rebooted.record().installed_release == ft::kDeltaRelease &&
          output_is(rebooted, reinterpret_cast<const uint8_t*>(expected->data()), expected->size()),
      "A", "after a restart it boots v2 from slot 1");
  expect(rebooted.trusted_root().version == 2, "A", "the walked root survived the restart");
  // The targets key was replaced and revoked (root v3, v4): its offer is refused, saying so.
  const int requests = g_a.outbox.requests;
  rebooted.on_offer(tf_revoked_offer, tf_revoked_offer_size);
  expect(rebooted.trusted_root().version == 4 &&
             g_a.outbox.last_refusal == update::OfferStatus::kTargetsKeyRevoked &&
             g_a.outbox.requests == requests &&
             rebooted.record().installed_release == ft::kDeltaRelease,
         "A", "an offer under a revoked targets key is refused (root v4 applied)");
  g_chain_n = chain_n;
  g_check_n = check_n;
  g_apply_n = apply_n;
  g_infer_n = infer_n;
  std::printf(
      "instructions: root chain walk %llu (2 versions), offer check %llu, download + verify + "
      "patch + self-test + switch %llu (%u B delta, %u B artifact), one inference %llu\n",
      static_cast<unsigned long long>(chain_n), static_cast<unsigned long long>(check_n),
      static_cast<unsigned long long>(apply_n), tf_delta_size, tf_v1_size,
      static_cast<unsigned long long>(infer_n));
}

void update_device_b() {
  std::memcpy(g_tampered, tf_delta, tf_delta_size);
  g_tampered[tf_delta_size / 2] ^= 0x10;
  static device_agent::UpdateAgent agent(config(), g_b.records, g_b.slots, g_b.clock, g_b.outbox,
                                         g_verifier, g_sha, g_b.runner_a, g_b.runner_b, g_workspace,
                                         sizeof g_workspace);
  expect(agent.install_factory(tf_v1, tf_v1_size) && agent.boot(), "B", "factory v1 booted");
  agent.on_offer(tf_delta_offer, tf_delta_offer_size);
  g_b.outbox.serve(agent);
  expect(
      agent.state() == update::UpdateState::kRolledBack &&
          std::strcmp(agent.record().reason,
                      update::AgentReasonCode<update::AgentReason::kPayloadMismatch>::text) == 0 &&
          agent.record().failed_release == ft::kDeltaRelease,
      "B", "a payload with one byte changed is refused (payload sha256 mismatch)");
  expect(agent.record().installed_release == 0 && output_is(agent, tf_v1_output, tf_v1_output_size),
         "B", "the old model keeps running");
}

// The tamper cases of the Linux agent (tests/device_agent, TamperingIsRefused...) on the
// target: device C runs v1 and is offered the v2 update with its signature flipped, signed
// under another fleet's root, after its expiry, and (reflashed as another class) for a
// class it is not; then it installs release 8 and is offered release 7.
uint8_t g_flipped[8192];
void tamper_device_c() {
  static device_agent::UpdateAgent agent(config(), g_c.records, g_c.slots, g_c.clock, g_c.outbox,
                                         g_verifier, g_sha, g_c.runner_a, g_c.runner_b, g_workspace,
                                         sizeof g_workspace);
  expect(agent.install_factory(tf_v1, tf_v1_size) && agent.boot() &&
             output_is(agent, tf_v1_output, tf_v1_output_size),
         "C", "factory v1 booted");
  uint8_t v1_sha[32];
  g_sha.reset();
  g_sha.update(tf_v1, tf_v1_size);
  g_sha.finish(v1_sha);
  expect(std::memcmp(agent.record().installed_sha256, v1_sha, 32) == 0, "C",
         "the installed sha256 is v1's (computed on the target)");

  std::memcpy(g_flipped, tf_delta_offer, tf_delta_offer_size);
  const auto* signature = update::GetSignedOffer(g_flipped)->signature();
  g_flipped[signature->data() - g_flipped + 17] ^= 0x04;
  expect_refused(agent, g_c, g_flipped, tf_delta_offer_size, update::OfferStatus::kBadSignature,
                 tf_v1_output, tf_v1_output_size, "one signature bit flipped");
  expect_refused(agent, g_c, tf_stranger_offer, tf_stranger_offer_size,
                 update::OfferStatus::kBadCertificate, tf_v1_output, tf_v1_output_size,
                 "signed under an unknown root key");
  g_c.clock.now = ft::kNow + 2 * 3600;  // the offer expires an hour after kNow
  expect_refused(agent, g_c, tf_delta_offer, tf_delta_offer_size, update::OfferStatus::kExpired,
                 tf_v1_output, tf_v1_output_size, "expired an hour ago");
  g_c.clock.now = ft::kNow;
  device_agent::AgentConfig other = config();
  other.device_class = "cortex-m7-512k";
  static device_agent::UpdateAgent reflashed(other, g_c.records, g_c.slots, g_c.clock, g_c.outbox,
                                             g_verifier, g_sha, g_c.runner_a, g_c.runner_b,
                                             g_workspace, sizeof g_workspace);
  expect(reflashed.boot(), "C", "rebooted as class cortex-m7-512k, v1 loaded");
  expect_refused(reflashed, g_c, tf_delta_offer, tf_delta_offer_size,
                 update::OfferStatus::kWrongClass, tf_v1_output, tf_v1_output_size,
                 "for another class (cortex-m4-256k)");
  // Untampered, the same offer still installs: the refusals above were the tampering's.
  agent.boot();
  agent.on_offer(tf_delta_offer, tf_delta_offer_size);
  g_c.outbox.serve(agent);
  expect(agent.state() == update::UpdateState::kCommitted &&
             agent.record().installed_release == ft::kDeltaRelease,
         "C", "the untampered offer then installs release 8");
  // An older release of the same update (7 < 8): anti-rollback; v2 keeps running.
  // (v2's output copied: the agent's offer buffer takes the next offer)
  const auto* v2_output = agent.manifest()->self_tests()->Get(0)->expected_output();
  static uint8_t v2_bytes[64];
  const size_t v2_size = v2_output->size() < sizeof v2_bytes ? v2_output->size() : 0;
  std::memcpy(v2_bytes, v2_output->data(), v2_size);
  update::DeviceIdentity id{ft::kFleet,  ft::kClass,  agent.record().installed_release,
                            tf_root_pub, ft::kDevice, &agent.trusted_root()};
  const auto older = update::check_offer(tf_old_offer, tf_old_offer_size, id, ft::kNow, g_verifier);
  expect(older.status == update::OfferStatus::kNotNewer, "C",
         "release 7 after 8: the offer check says kNotNewer (anti-rollback)");
  expect_refused(agent, g_c, tf_old_offer, tf_old_offer_size, update::OfferStatus::kNotNewer,
                 v2_bytes, v2_size, "an older release (7 after 8)");
}

// The instruction bench (docs/firmware.md): digits_cnn v1 -> v2 as tinyfleet-compile made
// them for cortex-m4-256k on the host; instructions (QEMU -icount shift=0) to check the
// offer, to apply the delta (download, payload SHA-256, patch, SHA-256 of the slot,
// self-test, switch) and to run one inference, beside the fixture model's.
void bench_digits() {
  if (tf_digits_offer_size == 0) return;  // a fixture made without the digits models
  static device_agent::UpdateAgent agent(config(), g_d.records, g_d.slots, g_d.clock, g_d.outbox,
                                         g_verifier, g_sha, g_d.runner_a, g_d.runner_b, g_workspace,
                                         sizeof g_workspace);
  expect(agent.install_factory(tf_digits_v1, tf_digits_v1_size) && agent.boot() &&
             output_is(agent, tf_digits_v1_output, tf_digits_v1_output_size),
         "D", "digits_cnn v1 booted, gives the host runtime's output bytes");
  static update::TrustedRoot trusted;
  update::pin_root(tf_root_pub, &trusted);
  bool advanced = false;
  update::RootStatus why;
  const uint64_t chain_n = firmware::count_instructions([&] {
    update::apply_offer_root_chain(tf_digits_offer, tf_digits_offer_size, trusted, g_verifier,
                                   &advanced, &why);
  });
  update::DeviceIdentity id{ft::kFleet, ft::kClass, 0, tf_root_pub, ft::kDevice, &trusted};
  update::CheckedOffer checked;
  const uint64_t check_n = firmware::count_instructions([&] {
    checked = update::check_offer(tf_digits_offer, tf_digits_offer_size, id, ft::kNow, g_verifier);
  });
  const uint64_t apply_n = firmware::count_instructions([&] {
    agent.on_offer(tf_digits_offer, tf_digits_offer_size);
    g_d.outbox.serve(agent);
  });
  expect(checked.status == update::OfferStatus::kOk &&
             agent.state() == update::UpdateState::kCommitted &&
             agent.record().installed_release == ft::kDeltaRelease,
         "D", "digits_cnn v1 -> v2 delta verified, patched, self-tested, switched");
  const auto* expected = agent.manifest()->self_tests()->Get(0)->expected_output();
  bool v2_ok = false;
  const uint64_t infer_n = firmware::count_instructions([&] {
    v2_ok = output_is(agent, reinterpret_cast<const uint8_t*>(expected->data()), expected->size());
  });
  expect(v2_ok, "D", "digits_cnn v2 gives the output its offer's self-test expects");
  std::printf(
      "bench firmware_agent_qemu: digits_cnn v1 -> v2 (cortex-m4-256k, %u B artifact, "
      "%u B TensorRange delta) vs the fixture model (%u B, %u B delta), "
      "instructions under QEMU -icount shift=0\n",
      tf_digits_v1_size, tf_digits_delta_size, tf_v1_size, tf_delta_size);
  std::printf("bench | %-58s | %12s | %13s |\n", "step", "digits_cnn", "fixture model");
  std::printf("bench | %-58s | %12llu | %13llu |\n",
              "verify: root chain walk (2 versions, 4 Ed25519)",
              static_cast<unsigned long long>(chain_n), static_cast<unsigned long long>(g_chain_n));
  std::printf("bench | %-58s | %12llu | %13llu |\n", "verify: offer check (certificate + manifest)",
              static_cast<unsigned long long>(check_n), static_cast<unsigned long long>(g_check_n));
  std::printf("bench | %-58s | %12llu | %13llu |\n",
              "on_offer to switched (walk, check, chunks, hashes, patch)",
              static_cast<unsigned long long>(apply_n), static_cast<unsigned long long>(g_apply_n));
  std::printf("bench | %-58s | %12llu | %13llu |\n",
              "apply: that less walk and check (patch, hashes, self-test)",
              static_cast<unsigned long long>(apply_n - chain_n - check_n),
              static_cast<unsigned long long>(g_apply_n - g_chain_n - g_check_n));
  std::printf("bench | %-58s | %12llu | %13llu |\n", "one inference",
              static_cast<unsigned long long>(infer_n), static_cast<unsigned long long>(g_infer_n));
}

}  // namespace

int main() {
  InstructionCounter::start();
  std::printf("agent update on the Cortex-M4F (TensorRange delta, kernels runtime)\n");
  volatile uint32_t anchor = 0;
  const ft::StackMeter stack(reinterpret_cast<uintptr_t>(&anchor) - 256);
  update_device_a();
  update_device_b();
  tamper_device_c();
  std::printf("ram: stack high-water %u B below main (update, patch, self-test, inference)\n",
              static_cast<unsigned>(stack.used()));
  bench_digits();
  std::printf("bench | stack below main with digits_cnn's self-test and inference: %u B\n",
              static_cast<unsigned>(stack.used()));
  std::printf("ram: UpdateAgent %u B, InferenceLoop %u B, TensorRange workspace %u B\n",
              static_cast<unsigned>(sizeof(device_agent::UpdateAgent)),
              static_cast<unsigned>(sizeof(device_agent::InferenceLoop)),
              static_cast<unsigned>(
                  update::DeltaDecoder::workspace_size_for(update::DeltaCodec_TensorRange, 17)));
  if (g_failures != 0) {
    std::printf("agent update: %d of %d cases FAILED\n", g_failures, g_cases);
    return 1;
  }
  std::printf("agent update: ok (%d cases)\n", g_cases);
  return 0;
}
