#pragma once

#include <cstdint>
#include <string>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::update {

// The fleet's signing keys, as files in one folder:
//   root.key      Ed25519 secret key (64 bytes, mode 0600): keep it offline
//   root.pub      Ed25519 public key (32 bytes): devices pin it at provisioning
//   targets.key   the online signing key (64 bytes, mode 0600)
//   targets.cert  its certificate: public key (32) | expires_at (8, LE) | root signature (64)
// Devices verify the certificate with every offer, so they never store a targets key:
// rotating it strands nobody.
struct TargetsKey {
  std::string secret_key;      // 64 bytes
  std::string public_key;      // 32 bytes
  uint64_t expires_at = 0;     // unix seconds
  std::string root_signature;  // 64 bytes
};

// Creates root and targets keys in `dir` (refuses to overwrite a root key).
storage::Expected<TargetsKey> init_keys(const std::string& dir, uint64_t now_unix,
                                        uint32_t targets_days);
// A new targets key certified by root.key (which must be present for this); the
// previous one is kept as targets.key.<expiry> for the record.
storage::Expected<TargetsKey> rotate_targets_key(const std::string& dir, uint64_t now_unix,
                                                 uint32_t targets_days);
// What fleetd needs online: targets.key and targets.cert (never root.key).
storage::Expected<TargetsKey> load_targets_key(const std::string& dir);
storage::Expected<std::string> load_root_public_key(const std::string& dir);

}  // namespace tinyfleet::update
