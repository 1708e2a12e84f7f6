// Test helpers for update offers: SHA-256 of a byte string and the manifest fields of an
// update from a base artifact to a target, as fleetd's offer builder would fill them.
// Header-only: tests that include it link tinyfleet::update_host (libsodium).
#pragma once

#include <sodium.h>

#include <cstdint>
#include <string>

#include "tinyfleet/update/delta_encoder.h"
#include "tinyfleet/update/offer_signer.h"

namespace tinyfleet::testing {

// 32 raw bytes.
inline std::string sha256(const std::string& s) {
  std::string d(32, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(d.data()),
                     reinterpret_cast<const unsigned char*>(s.data()), s.size());
  return d;
}

// Release `release` of model "digits" for class cortex-m4-256k: `payload` turns `base`
// (empty for a first install) into `target`. Self-tests and drift baselines are the
// caller's to add.
// The device the fixtures' offers are bound to (AgentConfig::device_id of the test agents).
inline constexpr const char* kTestDeviceId = "device-0";

inline update::ManifestFields manifest_for(const std::string& base, const std::string& target,
                                           const update::Delta& payload, uint64_t release,
                                           uint32_t chunk_size, uint64_t expires_at) {
  update::ManifestFields f;
  f.device_class = "cortex-m4-256k";
  f.device_id = kTestDeviceId;
  f.model = "digits";
  f.model_version = static_cast<uint32_t>(release + 1);
  f.release_seq = release;
  f.target_sha256 = sha256(target);
  f.target_size = target.size();
  if (!base.empty()) f.base_sha256 = sha256(base);
  f.codec = payload.codec;
  f.payload_sha256 = sha256(payload.payload);
  f.payload_size = payload.payload.size();
  f.chunk_size = chunk_size;
  f.expires_at = expires_at;
  return f;
}

// Release `release` of model "digits" for device "dev-1" of class cortex-m4-256k whose
// target and payload are placeholders (hashes of 32 'T' and 32 'P' bytes), a full
// artifact, expiring an hour after `now`: for tests of signing and checking offers, not
// of installing them.
inline update::ManifestFields placeholder_manifest(uint64_t release, uint64_t now) {
  update::ManifestFields f;
  f.device_class = "cortex-m4-256k";
  f.model = "digits";
  f.device_id = "dev-1";
  f.release_seq = release;
  f.target_sha256 = std::string(32, 'T');
  f.target_size = 9000;
  f.payload_sha256 = std::string(32, 'P');
  f.payload_size = 1200;
  f.expires_at = now + 3600;
  return f;
}

}  // namespace tinyfleet::testing
