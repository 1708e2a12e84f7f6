#include "tinyfleet/update/offer.h"

#include <cstring>

namespace tinyfleet::update {

namespace {
constexpr char kCertificateContext[] = "tinyfleet-targets-v1";  // 20 bytes, no NUL

template <class V>
bool has_size(const V* v, size_t n) {
  return v && v->size() == n;
}

// The offer's structure check, in one place: check_offer and apply_offer_root_chain share
// this one instantiation of the FlatBuffers verifier (it is most of their flash).
const update::SignedOffer* verified_offer(const uint8_t* data, size_t size) {
  // Bounded: the verifier refuses deeper nesting or more tables than this.
  flatbuffers::Verifier v(data, size, /*max_depth=*/16, /*max_tables=*/4096);
  return update::VerifySignedOfferBuffer(v) ? update::GetSignedOffer(data) : nullptr;
}

bool equals(const flatbuffers::String* s, const char* expected) {
  return s && std::strlen(expected) == s->size() &&
         std::memcmp(s->data(), expected, s->size()) == 0;
}
}  // namespace

void certificate_message(const uint8_t public_key[32], uint64_t expires_at,
                         uint8_t out[kCertificateMessageSize]) {
  std::memcpy(out, kCertificateContext, 20);
  std::memcpy(out + 20, public_key, 32);
  for (int i = 0; i < 8; ++i) out[52 + i] = static_cast<uint8_t>(expires_at >> (8 * i));
}

CheckedOffer check_offer(const uint8_t* data, size_t size, const DeviceIdentity& device,
                         uint64_t now_unix, const SignatureVerifier& verifier) {
  CheckedOffer out;
  if (size > kMaxOfferBytes) {
    out.status = OfferStatus::kTooLarge;
    return out;
  }
  const auto* offer = verified_offer(data, size);
  if (!offer) return out;
  const auto* cert = offer->certificate();
  if (!cert || !has_size(cert->public_key(), 32) || !has_size(cert->root_signature(), 64) ||
      !has_size(offer->signature(), 64) || !offer->manifest() || offer->manifest()->size() == 0) {
    return out;
  }
  uint8_t message[kCertificateMessageSize];
  certificate_message(cert->public_key()->data(), cert->expires_at(), message);
  if (device.trusted_root) {
    out.status =
        check_targets_key(*device.trusted_root, message, sizeof message,
                          cert->root_signature()->data(), cert->public_key()->data(), verifier);
    if (out.status != OfferStatus::kOk) return out;
    out.status = OfferStatus::kMalformed;
  } else if (!verifier.verify(cert->root_signature()->data(), message, sizeof message,
                              device.root_public_key)) {
    out.status = OfferStatus::kBadCertificate;
    return out;
  }
  if (cert->expires_at() <= now_unix) {
    out.status = OfferStatus::kCertificateExpired;
    return out;
  }
  if (!verifier.verify(offer->signature()->data(), offer->manifest()->data(),
                       offer->manifest()->size(), cert->public_key()->data())) {
    out.status = OfferStatus::kBadSignature;
    return out;
  }
  // Signed, but still checked as untrusted structure before use.
  flatbuffers::Verifier mv(offer->manifest()->data(), offer->manifest()->size(), 16, 4096);
  if (!mv.VerifyBuffer<update::Manifest>(nullptr)) return out;
  const auto* m = offer->manifest_nested_root();
  out.release = m->release_seq();
  if (m->format_version() != kManifestFormatVersion) {
    out.status = OfferStatus::kUnknownFormat;
    return out;
  }
  const bool full = m->codec() == update::DeltaCodec_Full;
  if (m->kind() > update::OfferKind_MAX) return out;
  if (m->kind() == update::OfferKind_Model &&
      (!has_size(m->target_sha256(), 32) || !has_size(m->payload_sha256(), 32) ||
       (!full && !has_size(m->base_sha256(), 32)) || m->chunk_size() == 0 ||
       m->target_size() == 0 || m->payload_size() == 0 || m->codec() > update::DeltaCodec_MAX)) {
    return out;
  }
  if (!equals(m->fleet(), device.fleet)) {
    out.status = OfferStatus::kWrongFleet;
    return out;
  }
  if (!equals(m->device_class(), device.device_class)) {
    out.status = OfferStatus::kWrongClass;
    return out;
  }
  // Bound to one device: a manifest naming another device, or none (an offer from before
  // the field, or one built for a whole class) is refused, never taken as "any device".
  if (!device.device_id || !*device.device_id || !equals(m->device_id(), device.device_id)) {
    out.status = OfferStatus::kWrongDevice;
    return out;
  }
  if (m->release_seq() <= device.current_release) {
    out.status = OfferStatus::kNotNewer;
    return out;
  }
  const uint64_t max_step =
      device.trusted_root ? device.trusted_root->max_release_step : kDefaultMaxReleaseStep;
  if (m->release_seq() - device.current_release > max_step) {
    out.status = OfferStatus::kReleaseStepTooLarge;
    return out;
  }
  if (m->expires_at() <= now_unix) {
    out.status = OfferStatus::kExpired;
    return out;
  }
  out.status = OfferStatus::kOk;
  out.manifest = m;
  return out;
}

OfferStatus apply_offer_root_chain(const uint8_t* data, size_t size, TrustedRoot& trusted,
                                   const SignatureVerifier& verifier, bool* advanced,
                                   RootStatus* why) {
  *advanced = false;
  *why = RootStatus::kOk;
  if (size > kMaxOfferBytes) return OfferStatus::kTooLarge;
  const auto* offer = verified_offer(data, size);
  if (!offer) return OfferStatus::kMalformed;
  const auto* chain = offer->root_chain();
  if (!chain || chain->size() == 0) return OfferStatus::kOk;
  *why = apply_root_chain(trusted, chain->data(), chain->size(), verifier, advanced);
  return *why == RootStatus::kOk ? OfferStatus::kOk : OfferStatus::kRootRejected;
}

}  // namespace tinyfleet::update
