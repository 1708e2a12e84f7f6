#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/update/crypto.h"
#include "tinyfleet/update/offer_status.h"

namespace tinyfleet::update {

// Root metadata as TUF intends (docs/update-protocol.md, "Root metadata"): version N+1 of
// the fleet's root is signed by a threshold of root N's keys and a threshold of its own,
// so devices walk the chain from the key they pinned. Each version names the targets keys
// fleetd may sign offers with (leaving one out revokes it) and how far one offer may move
// a device's release counter. Little-endian, one document:
//   "TFRM" | format (1) | version (8) | max_release_step (8) | threshold (1)
//   | key_count (1) | keys (32 each) | targets_count (1) | targets keys (32 each)
//   | signature_count (1) | signatures (public key 32 | Ed25519 over the body 64)
// The body (what is signed) is everything before signature_count. A chain is documents
// back to back, oldest first. Portable: no heap, bounded loops.
inline constexpr size_t kMaxRootKeys = 8;
inline constexpr size_t kMaxTargetsKeys = 8;
inline constexpr size_t kMaxRootSignatures = 16;
inline constexpr uint8_t kRootFormat = 1;
inline constexpr size_t kRootHeaderSize = 4 + 1 + 8 + 8 + 1 + 1;
inline constexpr size_t kMaxRootBytes =
    kRootHeaderSize + kMaxRootKeys * 32 + 1 + kMaxTargetsKeys * 32 + 1 + kMaxRootSignatures * 96;
// Before a device holds any root metadata (only its pinned key): the largest step one
// offer may move its release counter. A stolen targets key then needs 2^44 installs, not
// one, to push a device's counter to the top and freeze it.
inline constexpr uint64_t kDefaultMaxReleaseStep = uint64_t{1} << 20;

enum class RootStatus : uint8_t {
  kOk = 0,
  kMalformed = 1,       // a length, count or field out of bounds
  kNotNext = 2,         // not version N+1 of the device's root N
  kNotSignedByOld = 3,  // fewer than root N's threshold of its keys signed it
  kNotSelfSigned = 4,   // fewer than its own threshold of its own keys signed it
};
const char* to_string(RootStatus status);

// One parsed document; pointers into the caller's bytes.
struct RootView {
  const uint8_t* body = nullptr;  // what the signatures cover
  size_t body_size = 0;
  size_t size = 0;  // the whole document (body and signatures)
  uint64_t version = 0;
  uint64_t max_release_step = 0;
  uint8_t threshold = 0;
  uint8_t key_count = 0;
  const uint8_t* keys = nullptr;  // key_count x 32
  uint8_t targets_count = 0;
  const uint8_t* targets = nullptr;  // targets_count x 32
  uint8_t signature_count = 0;
  const uint8_t* signatures = nullptr;  // signature_count x (32 + 64)
};

// What a device trusts (persisted by the agent). Version 0 is the pinned key alone: any
// targets key it certifies is allowed, and the release step is kDefaultMaxReleaseStep.
struct TrustedRoot {
  uint64_t version = 0;
  uint64_t max_release_step = kDefaultMaxReleaseStep;
  uint8_t threshold = 1;
  uint8_t key_count = 0;
  uint8_t targets_count = 0;
  uint8_t any_targets_key = 1;  // version 0 only
  uint8_t keys[kMaxRootKeys][32] = {};
  uint8_t targets[kMaxTargetsKeys][32] = {};
};

void pin_root(const uint8_t public_key[32], TrustedRoot* out);

// Reads the document at the start of `data` (it may be followed by more); bounds only,
// no signature is checked here.
RootStatus parse_root(const uint8_t* data, size_t size, RootView* out);

// Makes `next` trusted if it is version N+1 signed as above. From version 0 (the pinned
// key) any version the pinned key signed is accepted as the first.
RootStatus apply_root(TrustedRoot& trusted, const RootView& next,
                      const SignatureVerifier& verifier);

// Walks a chain: documents at or below the trusted version are skipped (and, from the
// pinned key, those it did not sign), each next one is applied; stops at the first failure (what
// was applied before it stays applied).
// `*advanced` tells whether the trusted root changed.
RootStatus apply_root_chain(TrustedRoot& trusted, const uint8_t* chain, size_t size,
                            const SignatureVerifier& verifier, bool* advanced);

// The offer-side checks against the trusted root (check_offer calls these): the targets
// key's certificate must be signed by one of the root keys and, from version 1 on, the key
// must be listed (kTargetsKeyRevoked otherwise); a release may move the counter by at most
// the root's step (kReleaseStepTooLarge).
OfferStatus check_targets_key(const TrustedRoot& root, const uint8_t* certificate_message,
                              size_t message_size, const uint8_t root_signature[64],
                              const uint8_t targets_key[32], const SignatureVerifier& verifier);
bool allows_targets_key(const TrustedRoot& root, const uint8_t targets_key[32]);

}  // namespace tinyfleet::update
