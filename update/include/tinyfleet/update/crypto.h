#pragma once

#include <cstddef>
#include <cstdint>

namespace tinyfleet::update {

// The two primitives the update path needs, behind an interface a bare-metal port
// implements with its own library or a hardware engine. The Linux port uses
// libsodium (sodium_crypto.h).
class Sha256 {
 public:
  virtual ~Sha256() = default;
  virtual void reset() = 0;
  virtual void update(const uint8_t* data, size_t size) = 0;
  virtual void finish(uint8_t digest[32]) = 0;
};

class SignatureVerifier {
 public:
  virtual ~SignatureVerifier() = default;
  // Ed25519: true when `signature` (64 bytes) over `message` verifies with `public_key`.
  virtual bool verify(const uint8_t signature[64], const uint8_t* message, size_t size,
                      const uint8_t public_key[32]) const = 0;
};

}  // namespace tinyfleet::update
