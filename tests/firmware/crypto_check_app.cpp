// On the Cortex-M4 (QEMU mps2-an386): the firmware's crypto ports over Debian's libsodium
// against RFC 8032 section 7.1 (Ed25519) and FIPS 180 (SHA-256) vectors, each with a
// deliberately wrong twin that must fail; update::check_offer on an offer signed on the
// host by update_host's signer, and its tampered variants refused by reason; the agent
// core taking that offer over RAM ports. Any heap allocation after start-up traps.
// Prints one line per case and "crypto check: ok (N cases)" or exits non-zero.
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fixture_constants.h"
#include "heap_trap.h"
#include "rfc8032_vectors.h"
#include "stack_meter.h"
#include "tinyfleet/device_agent/inference_loop.h"
#include "tinyfleet/device_agent/update_agent.h"
#include "tinyfleet/firmware/sodium_ports.h"
#include "tinyfleet/update/offer.h"

extern "C" {
extern const unsigned char tf_offer[];
extern const unsigned int tf_offer_size;
extern const unsigned char tf_root_pub[];
extern const unsigned int tf_root_pub_size;
}

namespace {

using namespace tinyfleet;
namespace ft = tinyfleet::firmware_test;

int g_cases = 0, g_failures = 0;
void expect(bool ok, const char* what, const char* name) {
  ++g_cases;
  if (!ok) ++g_failures;
  std::printf("%s %s %s\n", ok ? "ok  " : "FAIL", what, name);
}

size_t unhex(const char* h, uint8_t* out, size_t capacity) {
  size_t n = 0;
  auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (; h[0] && h[1] && n < capacity; h += 2)
    out[n++] = static_cast<uint8_t>(nib(h[0]) << 4 | nib(h[1]));
  return n;
}

void check_sha256(firmware::Sha256Port& sha) {
  struct V {
    const char* name;
    const char* message;
    const char* digest;
  };
  const V vectors[] = {
      {"FIPS 180 \"abc\"", "abc",
       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"FIPS 180 empty", "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"FIPS 180 448-bit", "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"}};
  for (const auto& v : vectors) {
    uint8_t want[32], got[32];
    unhex(v.digest, want, 32);
    const size_t len = std::strlen(v.message);
    sha.reset();
    // In two pieces, as the agent streams a slot.
    sha.update(reinterpret_cast<const uint8_t*>(v.message), len / 2);
    sha.update(reinterpret_cast<const uint8_t*>(v.message) + len / 2, len - len / 2);
    sha.finish(got);
    expect(std::memcmp(want, got, 32) == 0, "sha256", v.name);
    // The wrong twin: one more byte must give another digest.
    sha.reset();
    sha.update(reinterpret_cast<const uint8_t*>(v.message), len);
    sha.update(reinterpret_cast<const uint8_t*>("x"), 1);
    sha.finish(got);
    expect(std::memcmp(want, got, 32) != 0, "sha256 differs (message + 1 byte)", v.name);
  }
}

void check_ed25519(const firmware::Ed25519Verifier& verifier) {
  static uint8_t message[1024];
  for (const auto& v : ft::kRfc8032Vectors) {
    uint8_t pk[32], sig[64];
    unhex(v.public_key, pk, 32);
    unhex(v.signature, sig, 64);
    const size_t len = unhex(v.message, message, sizeof message);
    expect(verifier.verify(sig, message, len, pk), "ed25519 verifies", v.name);
    sig[5] ^= 0x01;  // R changed
    expect(!verifier.verify(sig, message, len, pk), "ed25519 refuses a flipped signature bit",
           v.name);
    sig[5] ^= 0x01;
    if (len > 0) {
      message[len - 1] ^= 0x80;
      expect(!verifier.verify(sig, message, len, pk), "ed25519 refuses a changed message", v.name);
      message[len - 1] ^= 0x80;
    }
    pk[0] ^= 0x02;
    expect(!verifier.verify(sig, message, len, pk), "ed25519 refuses another public key", v.name);
  }
}

// A copy of the host-signed offer that a case may damage.
uint8_t g_offer[update::kMaxOfferBytes];

// Changes the manifest's payload hash (32 'P' bytes) inside the signed bytes of g_offer.
bool tamper_payload_hash() {
  std::memcpy(g_offer, tf_offer, tf_offer_size);
  for (size_t i = 0; i + 32 <= tf_offer_size; ++i) {
    if (std::memcmp(g_offer + i, "PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP", 32) == 0) {
      g_offer[i] = 'Q';
      return true;
    }
  }
  return false;
}

update::OfferStatus check(const uint8_t* root, const char* cls, uint64_t now,
                          const firmware::Ed25519Verifier& verifier) {
  update::DeviceIdentity id{ft::kFleet, cls, 0, root, ft::kDevice};
  return update::check_offer(g_offer, tf_offer_size, id, now, verifier).status;
}

void check_offers(const firmware::Ed25519Verifier& verifier) {
  std::memcpy(g_offer, tf_offer, tf_offer_size);
  expect(check(tf_root_pub, ft::kClass, ft::kNow, verifier) == update::OfferStatus::kOk,
         "offer signed on the host", "accepted");
  expect(check(tf_root_pub, "linux-arm64", ft::kNow, verifier) == update::OfferStatus::kWrongClass,
         "offer for cortex-m4-256k", "refused by a linux-arm64 device (kWrongClass)");
  expect(check(tf_root_pub, ft::kClass, ft::kNow + 7200, verifier) == update::OfferStatus::kExpired,
         "offer expired", "refused (kExpired)");
  uint8_t other_root[32];
  std::memcpy(other_root, tf_root_pub, 32);
  other_root[31] ^= 0x01;
  const auto unknown = check(other_root, ft::kClass, ft::kNow, verifier);
  expect(unknown == update::OfferStatus::kBadCertificate, "offer under another root key",
         "refused (kBadCertificate)");
  const bool tampered = tamper_payload_hash();
  expect(tampered && check(tf_root_pub, ft::kClass, ft::kNow, verifier) ==
                         update::OfferStatus::kBadSignature,
         "offer with a changed payload hash", "refused (kBadSignature)");
  std::memcpy(g_offer, tf_offer, tf_offer_size);
}

// RAM ports: enough for the agent core to take the offer and ask for its chunks.
class RamRecords final : public device_agent::RecordStore {
 public:
  long load(const char* name, uint8_t* out, size_t capacity) override {
    Slot* s = find(name, false);
    if (!s || s->size > capacity) return -1;
    std::memcpy(out, s->data, s->size);
    return static_cast<long>(s->size);
  }
  bool save(const char* name, const uint8_t* data, size_t size) override {
    Slot* s = find(name, true);
    if (!s || size > sizeof s->data) return false;
    std::memcpy(s->data, data, size);
    s->size = size;
    return true;
  }

 private:
  struct Slot {
    char name[16] = {};
    uint8_t data[1024] = {};
    size_t size = 0;
  };
  Slot* find(const char* name, bool create) {
    for (auto& s : slots_) {
      if (std::strcmp(s.name, name) == 0) return &s;
    }
    if (!create) return nullptr;
    for (auto& s : slots_) {
      if (!s.name[0]) {
        std::snprintf(s.name, sizeof s.name, "%s", name);
        return &s;
      }
    }
    return nullptr;
  }
  Slot slots_[4];
};

// The offer record is larger than RamRecords' slots: kept apart.
class RamRecordsWithOffer final : public device_agent::RecordStore {
 public:
  long load(const char* name, uint8_t* out, size_t capacity) override {
    if (std::strcmp(name, "offer") != 0) return small_.load(name, out, capacity);
    if (offer_size_ == 0 || offer_size_ > capacity) return -1;
    std::memcpy(out, offer_, offer_size_);
    return static_cast<long>(offer_size_);
  }
  bool save(const char* name, const uint8_t* data, size_t size) override {
    if (std::strcmp(name, "offer") != 0) return small_.save(name, data, size);
    if (size > sizeof offer_) return false;
    std::memcpy(offer_, data, size);
    offer_size_ = size;
    return true;
  }

 private:
  RamRecords small_;
  uint8_t offer_[4096];
  size_t offer_size_ = 0;
};

class RamSlots final : public device_agent::SlotStore {
 public:
  bool begin_slot(int) override { return false; }
  bool append_slot(int, const uint8_t*, size_t) override { return false; }
  bool commit_slot(int) override { return false; }
  long slot_size(int) override { return -1; }
  bool read_slot(int, uint64_t, uint8_t*, size_t) override { return false; }
  const uint8_t* map_slot(int) override { return nullptr; }
  long staging_size() override { return static_cast<long>(staged_); }
  bool staging_append(uint64_t offset, const uint8_t*, size_t size) override {
    if (offset != staged_) return false;
    staged_ += size;
    return true;
  }
  bool staging_read(uint64_t, uint8_t*, size_t) override { return false; }
  bool staging_clear() override {
    staged_ = 0;
    return true;
  }

 private:
  uint64_t staged_ = 0;
};

class FixedClock final : public device_agent::Clock {
 public:
  uint64_t now_unix() override { return ft::kNow; }
  uint64_t monotonic_ms() override { return 0; }
};

class RecordingOutbox final : public device_agent::Outbox {
 public:
  bool publish_status(const uint8_t*, size_t) override {
    ++statuses;
    return true;
  }
  bool request_chunk(uint64_t release, uint64_t offset, uint32_t length) override {
    last_release = release;
    last_offset = offset;
    last_length = length;
    ++requests;
    return true;
  }
  int statuses = 0, requests = 0;
  uint64_t last_release = 0, last_offset = 0;
  uint32_t last_length = 0;
};

class NoModel final : public device_agent::ModelRunner {
 public:
  bool load(const uint8_t*, size_t, const char** reason) override {
    *reason = "no model runner in this check";
    return false;
  }
  size_t input_bytes() const override { return 0; }
  size_t output_bytes() const override { return 0; }
  bool run(const int8_t*, int8_t*) override { return false; }
};

RamRecordsWithOffer g_records;
RamSlots g_slots;
FixedClock g_clock;
RecordingOutbox g_outbox;
NoModel g_active, g_candidate;
alignas(16) uint8_t g_workspace[24 * 1024];

void check_agent(firmware::Sha256Port& sha, const firmware::Ed25519Verifier& verifier) {
  device_agent::AgentConfig config;
  config.fleet = ft::kFleet;
  config.device_class = ft::kClass;
  config.root_public_key = tf_root_pub;
  config.device_id = ft::kDevice;
  static device_agent::UpdateAgent agent(config, g_records, g_slots, g_clock, g_outbox, verifier,
                                         sha, g_active, g_candidate, g_workspace,
                                         sizeof g_workspace);
  static device_agent::InferenceLoop loop(device_agent::InferenceConfig{}, agent, g_clock,
                                          g_outbox);
  expect(agent.provision_empty() && !agent.boot(), "agent", "provisioned without a model");
  expect(loop.infer(nullptr, 0, -1) == -1, "agent", "no inference without a model");
  loop.poll();  // no window due yet (links the telemetry path into the footprint)
  expect(loop.windows_sent() == 0 && loop.pending().empty(), "agent", "no telemetry window yet");
  const int statuses = g_outbox.statuses;
  agent.on_offer(g_offer, tamper_payload_hash() ? tf_offer_size : 0);
  expect(agent.state() == update::UpdateState::kIdle && g_outbox.requests == 0 &&
             g_outbox.statuses == statuses + 1,
         "agent", "tampered offer refused (status sent), nothing requested");
  agent.on_offer(tf_offer, tf_offer_size);
  expect(agent.state() == update::UpdateState::kDownloading && g_outbox.requests == 1 &&
             g_outbox.last_release == ft::kRelease && g_outbox.last_offset == 0 &&
             g_outbox.last_length == ft::kChunkSize,
         "agent", "signed offer taken: downloading, first chunk requested");
  static uint8_t chunk[ft::kChunkSize];
  agent.on_chunk(ft::kRelease, 0, chunk, sizeof chunk);
  expect(g_outbox.requests == 2 && g_outbox.last_offset == ft::kChunkSize, "agent",
         "chunk stored, next one requested");
  agent.poll();  // the chunk timeout has not passed (the clock stands still)
  agent.on_reconnect();
  expect(g_outbox.requests == 3 && g_outbox.last_offset == ft::kChunkSize, "agent",
         "poll, then a reconnect re-requests the chunk in flight");
  expect(!agent.install_factory(chunk, sizeof chunk), "agent",
         "factory install refused when the slot cannot be written");
  std::printf("ram: UpdateAgent %u B, InferenceLoop %u B, TensorRange workspace %u B\n",
              static_cast<unsigned>(sizeof agent), static_cast<unsigned>(sizeof loop),
              static_cast<unsigned>(
                  update::DeltaDecoder::workspace_size_for(update::DeltaCodec_TensorRange, 17)));
  expect(!update::DeltaDecoder::codec_available(update::DeltaCodec_TensorZstd) &&
             update::DeltaDecoder::codec_available(update::DeltaCodec_TensorRange),
         "decoder", "TensorRange built in, zstd left out");
  update::DeltaDecoder zstd(update::DeltaCodec_Full, 100, 17, g_workspace, sizeof g_workspace,
                            nullptr, nullptr);
  expect(zstd.start() == update::DeltaStatus::kCodecUnavailable, "decoder",
         "a Full (zstd) payload is refused (kCodecUnavailable)");
}

}  // namespace

int main() {
  std::printf("firmware crypto check (libsodium from Debian's source, Cortex-M4F)\n");
  volatile uint32_t anchor = 0;
  const ft::StackMeter stack(reinterpret_cast<uintptr_t>(&anchor) - 256);
  lock_heap();
  static firmware::Sha256Port sha;
  static firmware::Ed25519Verifier verifier;
#ifdef TINYFLEET_HEAP_MUTANT
  // The deliberately wrong variant: an allocation after start-up must trap (exit 99).
  std::printf("allocated %p\n", std::malloc(16));
#endif
  check_sha256(sha);
  check_ed25519(verifier);
  check_offers(verifier);
  check_agent(sha, verifier);
  std::printf("ram: stack high-water %u B below main (offer check, Ed25519)\n",
              static_cast<unsigned>(stack.used()));
  if (g_failures != 0) {
    std::printf("crypto check: %d of %d cases FAILED\n", g_failures, g_cases);
    return 1;
  }
  std::printf("crypto check: ok (%d cases)\n", g_cases);
  return 0;
}
