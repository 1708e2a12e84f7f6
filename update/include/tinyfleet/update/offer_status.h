#pragma once

#include <cstdint>

namespace tinyfleet::update {

// Why an offer was refused: check_offer()'s result, and the refusal code a device sends
// in its status message (status_message.h), so fleetd decides what to do by the code,
// never by the human-readable detail. Values are on the wire: append, never renumber.
enum class OfferStatus : uint8_t {
  kOk = 0,
  kTooLarge = 1,            // more bytes than the device accepts for an offer
  kMalformed = 2,           // the FlatBuffers verifier or a field length check failed
  kUnknownFormat = 3,       // a manifest format_version this agent does not know
  kBadCertificate = 4,      // the targets key is not certified by the pinned root key
  kCertificateExpired = 5,  // the targets key's certificate has expired
  kBadSignature = 6,        // the manifest is not signed by the certified targets key
  kWrongFleet = 7,          // the manifest names another fleet
  kWrongClass = 8,          // the manifest is for another device class
  kNotNewer = 9,            // release sequence not above the device's (anti-rollback)
  kExpired = 10,            // the manifest has expired (anti-freeze)
  // Refusals of a valid offer, decided by the agent after the check:
  kBaseMismatch = 11,  // a delta against a base the device does not run: offer again
  kNotStored = 12,     // the device could not store the offer
  kWrongDevice = 13,   // the manifest names another device (or none: a captured offer)
  kOnProbation = 14,   // deferred, not refused: taken once the installed model's probation ends
  // Trust metadata (root_metadata.h):
  kTargetsKeyRevoked = 15,    // the trusted root no longer lists the offer's targets key
  kReleaseStepTooLarge = 16,  // the release moves the counter further than the root allows
  kRootRejected = 17,         // the root metadata the offer carries does not verify
};
inline constexpr uint8_t kLastOfferStatus = 17;

const char* to_string(OfferStatus status);

}  // namespace tinyfleet::update
