#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/update/crypto.h"
#include "tinyfleet/update/offer_status.h"
#include "tinyfleet/update/root_metadata.h"
#include "tinyfleet/update/update_generated.h"

namespace tinyfleet::update {

// What the device is and holds; compared against every offer.
struct DeviceIdentity {
  const char* fleet;
  const char* device_class;
  // The highest release this device ever accepted (not lowered by a rollback): an offer
  // must be above it (anti-rollback). 0 before the first update.
  uint64_t current_release;
  const uint8_t* root_public_key;  // 32 bytes, pinned at provisioning
  const char* device_id = "";      // the manifest must name exactly this device
  // The root the device walked to from its pinned key (root_metadata.h); null: the pinned
  // key alone (version 0).
  const TrustedRoot* trusted_root = nullptr;
};

// The largest offer a device accepts (and the agent's offer buffer): 64 KB unless the
// build says otherwise (the Cortex-M4 firmware: 8 KB; docs/firmware.md).
#ifndef TINYFLEET_MAX_OFFER_BYTES
#define TINYFLEET_MAX_OFFER_BYTES (64 * 1024)
#endif
inline constexpr size_t kMaxOfferBytes = TINYFLEET_MAX_OFFER_BYTES;
inline constexpr uint16_t kManifestFormatVersion = 1;

struct CheckedOffer {
  OfferStatus status = OfferStatus::kMalformed;
  const update::Manifest* manifest = nullptr;  // points into the caller's buffer; valid when kOk
  // The signed manifest's release once its signature verified and its structure was read
  // (0 before): what a refusal names (the status message's pending release).
  uint64_t release = 0;
};

// Verifies, in order: size, structure, the certificate chain (root -> targets key,
// unexpired, listed by the trusted root), the manifest signature, format version, fleet,
// class, device, release sequence (newer, by at most the root's step) and expiry. A "no model"
// offer (kind NoModel) carries no target or payload. Reads in place; allocates nothing. The
// offer's root chain is not applied here (apply_offer_root_chain).
CheckedOffer check_offer(const uint8_t* data, size_t size, const DeviceIdentity& device,
                         uint64_t now_unix, const SignatureVerifier& verifier);

// Walks the root chain an offer carries (structure checked first) from `trusted`.
// kOk with `*advanced` false when it carries none or nothing new; kRootRejected when a
// document does not verify (`*why` says how) or kMalformed.
OfferStatus apply_offer_root_chain(const uint8_t* data, size_t size, TrustedRoot& trusted,
                                   const SignatureVerifier& verifier, bool* advanced,
                                   RootStatus* why);

// The bytes the root key signs to certify a targets key (76 bytes).
inline constexpr size_t kCertificateMessageSize = 20 + 32 + 8;
void certificate_message(const uint8_t public_key[32], uint64_t expires_at,
                         uint8_t out[kCertificateMessageSize]);

}  // namespace tinyfleet::update
