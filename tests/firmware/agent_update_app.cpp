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
#include "tinyfleet/update/offer.h"

extern "C" {
extern const unsigned char tf_root_pub[], tf_v1[], tf_input[], tf_v1_output[], tf_delta[],
    tf_delta_offer[], tf_revoked_offer[];
extern const unsigned int tf_v1_size, tf_input_size, tf_v1_output_size, tf_delta_size,
    tf_delta_offer_size, tf_revoked_offer_size;
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

// Serves the chunks the agent asks for from the payload (as the broker would).
class ChunkOutbox final : public device_agent::Outbox {
 public:
  explicit ChunkOutbox(const uint8_t* payload) : payload_(payload) {}
  bool publish_status(const uint8_t* data, size_t size) override {
    ++statuses;
    update::StatusMessage m;
    if (update::decode_status(data, size, &m).ok()) last_refusal = m.refusal;
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
      if (offset_ + length_ > tf_delta_size) return;
      agent.on_chunk(release_, offset_, payload_ + offset_, length_);
    }
  }
  bool pending = false;
  int statuses = 0, requests = 0;
  update::OfferStatus last_refusal = update::OfferStatus::kOk;

 private:
  const uint8_t* payload_;
  uint64_t release_ = 0, offset_ = 0;
  uint32_t length_ = 0;
};

struct Device {
  explicit Device(const uint8_t* payload) : outbox(payload) {}
  ft::RamRecords records;
  ft::RamSlots slots;
  ft::FixedClock clock;
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

Device g_a(tf_delta);
Device g_b(g_tampered);

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
  expect(agent.state() == update::UpdateState::kRolledBack &&
             std::strcmp(agent.record().reason, "payload sha256 mismatch") == 0 &&
             agent.record().failed_release == ft::kDeltaRelease,
         "B", "a payload with one byte changed is refused (payload sha256 mismatch)");
  expect(agent.record().installed_release == 0 && output_is(agent, tf_v1_output, tf_v1_output_size),
         "B", "the old model keeps running");
}

}  // namespace

int main() {
  InstructionCounter::start();
  std::printf("agent update on the Cortex-M4F (TensorRange delta, kernels runtime)\n");
  volatile uint32_t anchor = 0;
  const ft::StackMeter stack(reinterpret_cast<uintptr_t>(&anchor) - 256);
  update_device_a();
  update_device_b();
  std::printf("ram: stack high-water %u B below main (update, patch, self-test, inference)\n",
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
