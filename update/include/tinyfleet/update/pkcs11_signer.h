#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "tinyfleet/storage/error.h"
#include "tinyfleet/update/signer.h"

namespace tinyfleet::update {

// Where the targets key lives on a PKCS#11 token (fleetd's keys.pkcs11_* settings).
struct Pkcs11Config {
  std::string module;       // the token's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
  std::string token_label;  // the token (slot) by its label
  std::string pin;          // the user PIN
  std::string key_label;    // CKA_LABEL of the Ed25519 key pair (CKK_EC_EDWARDS)
};

// Signs with CKM_EDDSA on the token: the secret key never leaves it. The module is loaded
// with dlopen; one session, serialized by a mutex.
class Pkcs11Signer final : public Signer {
 public:
  static storage::Expected<std::unique_ptr<Pkcs11Signer>> open(const Pkcs11Config& config);
  ~Pkcs11Signer() override;
  std::string public_key() const override { return public_key_; }
  storage::Expected<std::string> sign(const std::string& message) override;

  struct Session;  // the module's function list and handles (pkcs11_signer.cpp)

 private:
  explicit Pkcs11Signer(std::unique_ptr<Session> session);
  std::unique_ptr<Session> session_;
  std::string public_key_;
  std::mutex mu_;
};

// Creates an Ed25519 key pair labelled config.key_label on the token (not extractable)
// and returns its public key (32 bytes): `fleetctl keys pkcs11-generate`, and the tests.
storage::Expected<std::string> pkcs11_generate_ed25519(const Pkcs11Config& config);

}  // namespace tinyfleet::update
