#include "tinyfleet/update/offer_status.h"

#include "wire_codec.h"

namespace tinyfleet::update {

const char* to_string(OfferStatus status) {
  static const char* const kNames[] = {"ok",
                                       "offer too large",
                                       "offer malformed",
                                       "unknown manifest format version",
                                       "targets key not certified by the root key",
                                       "targets key certificate expired",
                                       "manifest signature invalid",
                                       "manifest for another fleet",
                                       "manifest for another device class",
                                       "release not newer than the installed one",
                                       "manifest expired",
                                       "delta base is not the installed model",
                                       "cannot store the offer",
                                       "manifest for another device",
                                       "deferred: the installed model is on probation",
                                       "targets key revoked by the root metadata",
                                       "release moves the counter too far",
                                       "root metadata rejected"};
  return wire::name_of(kNames, static_cast<size_t>(status));
}

}  // namespace tinyfleet::update
