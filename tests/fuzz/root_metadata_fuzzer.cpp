// Arbitrary bytes as a root metadata chain (what an offer carries): the parser and the
// chain walk must never read out of bounds or loop unboundedly. Run twice: with real
// Ed25519 (random bytes never verify) and with a verifier that accepts every signature,
// so the fuzzer also reaches the threshold counting and the copy into the trusted root.
#include <sodium.h>

#include <cstdint>
#include <cstring>

#include "tinyfleet/update/root_metadata.h"
#include "tinyfleet/update/sodium_crypto.h"

namespace {
struct AcceptAll final : tinyfleet::update::SignatureVerifier {
  bool verify(const uint8_t*, const uint8_t*, size_t, const uint8_t*) const override {
    return true;
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tinyfleet::update;
  static const bool ready = sodium_init() >= 0;
  (void)ready;
  uint8_t pinned[32] = {1, 2, 3};
  // The first 32 bytes pin the root (so a document may name it), the rest is the chain.
  if (size >= 32) {
    std::memcpy(pinned, data, 32);
    data += 32;
    size -= 32;
  }
  RootView view;
  parse_root(data, size, &view);
  bool advanced = false;
  TrustedRoot real;
  pin_root(pinned, &real);
  apply_root_chain(real, data, size, SodiumVerifier(), &advanced);
  TrustedRoot any;
  pin_root(pinned, &any);
  apply_root_chain(any, data, size, AcceptAll(), &advanced);
  if (any.key_count > kMaxRootKeys || any.targets_count > kMaxTargetsKeys) __builtin_trap();
  allows_targets_key(any, pinned);
  return 0;
}
