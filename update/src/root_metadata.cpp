#include "tinyfleet/update/root_metadata.h"

#include <cstring>

#include "wire_codec.h"

namespace tinyfleet::update {

namespace {

constexpr uint8_t kMagic[4] = {'T', 'F', 'R', 'M'};

uint64_t read_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// How many of `keys` (count x 32) have a signature in `view` that verifies over its body:
// each key counts once however many signatures name it.
size_t signers_among(const RootView& view, const uint8_t (*keys)[32], size_t count,
                     const SignatureVerifier& verifier) {
  size_t n = 0;
  for (size_t k = 0; k < count; ++k) {
    for (size_t s = 0; s < view.signature_count; ++s) {
      const uint8_t* sig = view.signatures + s * 96;
      if (std::memcmp(sig, keys[k], 32) == 0 &&
          verifier.verify(sig + 32, view.body, view.body_size, keys[k])) {
        ++n;
        break;
      }
    }
  }
  return n;
}

bool distinct(const uint8_t* keys, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    for (size_t j = i + 1; j < count; ++j) {
      if (std::memcmp(keys + i * 32, keys + j * 32, 32) == 0) return false;
    }
  }
  return true;
}

}  // namespace

const char* to_string(RootStatus status) {
  static const char* const kNames[] = {
      "ok", "root metadata malformed", "root metadata is not the next version",
      "root metadata not signed by a threshold of the trusted root's keys",
      "root metadata not signed by a threshold of its own keys"};
  return wire::name_of(kNames, static_cast<size_t>(status));
}

void pin_root(const uint8_t public_key[32], TrustedRoot* out) {
  *out = TrustedRoot{};
  out->key_count = 1;
  std::memcpy(out->keys[0], public_key, 32);
}

RootStatus parse_root(const uint8_t* data, size_t size, RootView* out) {
  *out = RootView{};
  if (!data || size < kRootHeaderSize || std::memcmp(data, kMagic, 4) != 0 ||
      data[4] != kRootFormat) {
    return RootStatus::kMalformed;
  }
  RootView v;
  v.version = read_u64(data + 5);
  v.max_release_step = read_u64(data + 13);
  v.threshold = data[21];
  v.key_count = data[22];
  size_t at = kRootHeaderSize;
  if (v.version == 0 || v.max_release_step == 0 || v.key_count == 0 || v.key_count > kMaxRootKeys ||
      v.threshold == 0 || v.threshold > v.key_count || size - at < size_t{v.key_count} * 32 + 1) {
    return RootStatus::kMalformed;
  }
  v.keys = data + at;
  at += size_t{v.key_count} * 32;
  v.targets_count = data[at++];
  if (v.targets_count > kMaxTargetsKeys || size - at < size_t{v.targets_count} * 32 + 1) {
    return RootStatus::kMalformed;
  }
  v.targets = data + at;
  at += size_t{v.targets_count} * 32;
  v.body = data;
  v.body_size = at;
  v.signature_count = data[at++];
  if (v.signature_count == 0 || v.signature_count > kMaxRootSignatures ||
      size - at < size_t{v.signature_count} * 96) {
    return RootStatus::kMalformed;
  }
  v.signatures = data + at;
  v.size = at + size_t{v.signature_count} * 96;
  if (!distinct(v.keys, v.key_count) || !distinct(v.targets, v.targets_count)) {
    return RootStatus::kMalformed;
  }
  *out = v;
  return RootStatus::kOk;
}

RootStatus apply_root(TrustedRoot& trusted, const RootView& next,
                      const SignatureVerifier& verifier) {
  // From the pinned key alone (version 0) any version that key signed is the first one:
  // a device provisioned after rotations pins the newest key and starts there.
  if (trusted.version != 0 && next.version != trusted.version + 1) return RootStatus::kNotNext;
  if (signers_among(next, trusted.keys, trusted.key_count, verifier) < trusted.threshold) {
    return RootStatus::kNotSignedByOld;
  }
  const auto* own = reinterpret_cast<const uint8_t(*)[32]>(next.keys);
  if (signers_among(next, own, next.key_count, verifier) < next.threshold) {
    return RootStatus::kNotSelfSigned;
  }
  trusted.version = next.version;
  trusted.max_release_step = next.max_release_step;
  trusted.threshold = next.threshold;
  trusted.key_count = next.key_count;
  trusted.targets_count = next.targets_count;
  trusted.any_targets_key = 0;
  std::memset(trusted.keys, 0, sizeof trusted.keys);
  std::memset(trusted.targets, 0, sizeof trusted.targets);
  std::memcpy(trusted.keys, next.keys, size_t{next.key_count} * 32);
  std::memcpy(trusted.targets, next.targets, size_t{next.targets_count} * 32);
  return RootStatus::kOk;
}

RootStatus apply_root_chain(TrustedRoot& trusted, const uint8_t* chain, size_t size,
                            const SignatureVerifier& verifier, bool* advanced) {
  *advanced = false;
  size_t at = 0;
  // Each document is at least kRootHeaderSize bytes, so this ends within size / 23 steps.
  while (at < size) {
    RootView view;
    if (const auto s = parse_root(chain + at, size - at, &view); s != RootStatus::kOk) return s;
    at += view.size;
    if (view.version <= trusted.version) continue;  // the device has it already
    const auto s = apply_root(trusted, view, verifier);
    if (s == RootStatus::kNotSignedByOld && trusted.version == 0) continue;  // before the pin
    if (s != RootStatus::kOk) return s;
    *advanced = true;
  }
  return RootStatus::kOk;
}

bool allows_targets_key(const TrustedRoot& root, const uint8_t targets_key[32]) {
  if (root.any_targets_key) return true;
  for (size_t i = 0; i < root.targets_count; ++i) {
    if (std::memcmp(root.targets[i], targets_key, 32) == 0) return true;
  }
  return false;
}

OfferStatus check_targets_key(const TrustedRoot& root, const uint8_t* certificate_message,
                              size_t message_size, const uint8_t root_signature[64],
                              const uint8_t targets_key[32], const SignatureVerifier& verifier) {
  bool certified = false;
  for (size_t k = 0; k < root.key_count && !certified; ++k) {
    certified = verifier.verify(root_signature, certificate_message, message_size, root.keys[k]);
  }
  if (!certified) return OfferStatus::kBadCertificate;
  if (!allows_targets_key(root, targets_key)) return OfferStatus::kTargetsKeyRevoked;
  return OfferStatus::kOk;
}

}  // namespace tinyfleet::update
