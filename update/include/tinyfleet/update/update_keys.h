#pragma once

#include <cstdint>
#include <string>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::update {

// The fleet's signing keys, as files (root.* offline, targets.* where fleetd reads):
//   root.key      Ed25519 secret key (64 bytes, mode 0600): keep it offline
//   root.pub      Ed25519 public key (32 bytes): devices pin it at provisioning
//   targets.key   the online signing key (64 bytes, mode 0600)
//   targets.cert  its certificate: public key (32) | expires_at (8, LE) | root signature (64)
//   root-vN.meta  root metadata versions, listing the allowed targets keys (root_keys.h)
// Devices verify the certificate with every offer, so they never store a targets key:
// rotating it strands nobody.
struct TargetsKey {
  std::string secret_key;      // 64 bytes
  std::string public_key;      // 32 bytes
  uint64_t expires_at = 0;     // unix seconds
  std::string root_signature;  // 64 bytes
};

// Creates the root key in `root_dir` (root.key, root.pub) and a targets key certified by
// it in `targets_dir` (targets.key, targets.cert and a copy of root.pub, which fleetd
// gives devices at provisioning), and root metadata version 1 listing that targets key. Refuses to
// overwrite a root key. The two folders may be one (tests); `fleetctl keys` refuses that, so
// root.key is never where fleetd reads.
storage::Expected<TargetsKey> init_keys(const std::string& root_dir, const std::string& targets_dir,
                                        uint64_t now_unix, uint32_t targets_days);
storage::Expected<TargetsKey> init_keys(const std::string& dir, uint64_t now_unix,
                                        uint32_t targets_days);
// A new targets key in `targets_dir` certified by `root_dir`/root.key (which must be
// present for this); the previous one is kept as targets.key.<expiry> for the record.
// The next root metadata version lists the new key and the previous one.
storage::Expected<TargetsKey> rotate_targets_key(const std::string& root_dir,
                                                 const std::string& targets_dir, uint64_t now_unix,
                                                 uint32_t targets_days);
storage::Expected<TargetsKey> rotate_targets_key(const std::string& dir, uint64_t now_unix,
                                                 uint32_t targets_days);
// Certifies a targets key whose secret lives elsewhere (a PKCS#11 token): writes
// targets.cert for `public_key` (32 bytes) and lists it in the next root metadata version.
storage::Expected<TargetsKey> certify_targets_key(const std::string& root_dir,
                                                  const std::string& targets_dir,
                                                  const std::string& public_key, uint64_t now_unix,
                                                  uint32_t targets_days);
// targets.cert signed again by root_dir/root.key (same key and expiry): after a root
// rotation.
storage::Expected<TargetsKey> recertify_targets_key(const std::string& root_dir,
                                                    const std::string& targets_dir);
// What fleetd needs online: targets.key and targets.cert (never root.key).
storage::Expected<TargetsKey> load_targets_key(const std::string& dir);
// targets.cert alone (the secret key is on a token); secret_key stays empty.
storage::Expected<TargetsKey> load_targets_certificate(const std::string& dir);
storage::Expected<std::string> load_root_public_key(const std::string& dir);

}  // namespace tinyfleet::update
