// Arbitrary bytes as a signed offer: the check must never read out of bounds.
#include <sodium.h>

#include <cstdint>

#include "tinyfleet/update/offer.h"
#include "tinyfleet/update/sodium_crypto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool ready = sodium_init() >= 0;
  (void)ready;
  static const uint8_t root[32] = {1, 2, 3};
  tinyfleet::update::SodiumVerifier verifier;
  tinyfleet::update::DeviceIdentity id{"default", "cortex-m4-256k", 3, root, "dev-a"};
  tinyfleet::update::check_offer(data, size, id, 1795305600, verifier);
  return 0;
}
