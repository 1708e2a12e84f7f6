#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/update/crypto.h"

namespace tinyfleet::firmware {

// The agent's crypto ports on the MCU, over the libsodium subset the firmware build
// compiles from Debian's source (third_party/libsodium): SHA-256 and Ed25519 verify.
// No heap, no global state; the SHA-256 state lives in the object (104 bytes).
class Sha256Port final : public update::Sha256 {
 public:
  Sha256Port();
  void reset() override;
  void update(const uint8_t* data, size_t size) override;
  void finish(uint8_t digest[32]) override;

 private:
  // crypto_hash_sha256_state: uint32_t state[8], uint64_t count, uint8_t buf[64].
  alignas(8) unsigned char state_[104];
};

class Ed25519Verifier final : public update::SignatureVerifier {
 public:
  bool verify(const uint8_t signature[64], const uint8_t* message, size_t size,
              const uint8_t public_key[32]) const override;
};

}  // namespace tinyfleet::firmware
