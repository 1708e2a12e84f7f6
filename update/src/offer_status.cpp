#include "tinyfleet/update/offer_status.h"

namespace tinyfleet::update {

const char* to_string(OfferStatus status) {
  switch (status) {
    case OfferStatus::kOk:
      return "ok";
    case OfferStatus::kTooLarge:
      return "offer too large";
    case OfferStatus::kMalformed:
      return "offer malformed";
    case OfferStatus::kUnknownFormat:
      return "unknown manifest format version";
    case OfferStatus::kBadCertificate:
      return "targets key not certified by the root key";
    case OfferStatus::kCertificateExpired:
      return "targets key certificate expired";
    case OfferStatus::kBadSignature:
      return "manifest signature invalid";
    case OfferStatus::kWrongFleet:
      return "manifest for another fleet";
    case OfferStatus::kWrongClass:
      return "manifest for another device class";
    case OfferStatus::kNotNewer:
      return "release not newer than the installed one";
    case OfferStatus::kExpired:
      return "manifest expired";
    case OfferStatus::kBaseMismatch:
      return "delta base is not the installed model";
    case OfferStatus::kNotStored:
      return "cannot store the offer";
  }
  return "unknown";
}

}  // namespace tinyfleet::update
