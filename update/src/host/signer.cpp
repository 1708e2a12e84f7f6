#include "tinyfleet/update/signer.h"

#include <sodium.h>

namespace tinyfleet::update {

storage::Expected<std::string> SodiumSigner::sign(const std::string& message) {
  if (secret_key_.size() != crypto_sign_SECRETKEYBYTES) {
    return storage::Error{
        storage::ErrorCode::kFailedPrecondition,
        "signing key holds " + std::to_string(secret_key_.size()) + " bytes, not 64"};
  }
  std::string signature(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       reinterpret_cast<const unsigned char*>(secret_key_.data()));
  return signature;
}

}  // namespace tinyfleet::update
