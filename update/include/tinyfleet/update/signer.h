#pragma once

#include <memory>
#include <string>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::update {

// Ed25519 signing behind an interface, so the targets key may live in a file (SodiumSigner)
// or on a PKCS#11 token that never lets it out (pkcs11_signer.h).
class Signer {
 public:
  virtual ~Signer() = default;
  virtual std::string public_key() const = 0;  // 32 bytes
  // A 64-byte signature over `message`, or why the key could not sign.
  virtual storage::Expected<std::string> sign(const std::string& message) = 0;
};

// A secret key in memory (libsodium; 64 bytes: seed and public key).
class SodiumSigner final : public Signer {
 public:
  explicit SodiumSigner(std::string secret_key) : secret_key_(std::move(secret_key)) {}
  std::string public_key() const override {
    return secret_key_.size() == 64 ? secret_key_.substr(32) : std::string();
  }
  storage::Expected<std::string> sign(const std::string& message) override;

 private:
  std::string secret_key_;
};

}  // namespace tinyfleet::update
