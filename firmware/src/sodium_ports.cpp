#include "tinyfleet/firmware/sodium_ports.h"

#include "crypto_hash_sha256.h"
#include "crypto_sign_ed25519.h"

namespace tinyfleet::firmware {

namespace {
crypto_hash_sha256_state* as_state(unsigned char* p) {
  return reinterpret_cast<crypto_hash_sha256_state*>(p);
}
}  // namespace

static_assert(sizeof(crypto_hash_sha256_state) <= 104, "Sha256Port::state_ is too small");
static_assert(alignof(crypto_hash_sha256_state) <= 8, "Sha256Port::state_ is misaligned");

Sha256Port::Sha256Port() { reset(); }

void Sha256Port::reset() { crypto_hash_sha256_init(as_state(state_)); }

void Sha256Port::update(const uint8_t* data, size_t size) {
  crypto_hash_sha256_update(as_state(state_), data, size);
}

void Sha256Port::finish(uint8_t digest[32]) { crypto_hash_sha256_final(as_state(state_), digest); }

bool Ed25519Verifier::verify(const uint8_t signature[64], const uint8_t* message, size_t size,
                             const uint8_t public_key[32]) const {
  return crypto_sign_ed25519_verify_detached(signature, message, size, public_key) == 0;
}

}  // namespace tinyfleet::firmware
