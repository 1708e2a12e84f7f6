#pragma once

#include <sodium.h>

#include <string>

#include "tinyfleet/update/crypto.h"

namespace tinyfleet::update {

// libsodium implementations (host only: the Linux port, fleet-sim and the tests).
class SodiumSha256 final : public Sha256 {
 public:
  SodiumSha256() { reset(); }
  void reset() override { crypto_hash_sha256_init(&state_); }
  void update(const uint8_t* data, size_t size) override {
    crypto_hash_sha256_update(&state_, data, size);
  }
  void finish(uint8_t digest[32]) override { crypto_hash_sha256_final(&state_, digest); }

 private:
  crypto_hash_sha256_state state_;
};

class SodiumVerifier final : public SignatureVerifier {
 public:
  bool verify(const uint8_t signature[64], const uint8_t* message, size_t size,
              const uint8_t public_key[32]) const override {
    return crypto_sign_verify_detached(signature, message, size, public_key) == 0;
  }
};

// Lower-case hex of raw bytes (keys, digests), as fleetctl prints and fleetd stores them.
inline std::string to_hex_string(const std::string& raw) {
  std::string out(raw.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                 raw.size());
  out.pop_back();
  return out;
}

}  // namespace tinyfleet::update
