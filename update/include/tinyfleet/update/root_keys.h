#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinyfleet/storage/error.h"
#include "tinyfleet/update/root_metadata.h"
#include "tinyfleet/update/signer.h"

namespace tinyfleet::update {

// The host side of root metadata (root_metadata.h has the format and the device side).
// Files: the root folder (offline) holds the root secret keys root.key, root-2.key, ...
// (a threshold may need several), root.pub (the first key's public half, which new
// devices pin) and every version root-vN.meta; the targets folder fleetd reads holds copies
// of root.pub and the root-vN.meta files, which fleetd sends with every offer.
struct RootMetadata {
  uint64_t version = 1;
  uint64_t max_release_step = kDefaultMaxReleaseStep;
  uint8_t threshold = 1;
  std::vector<std::string> keys;          // 32 bytes each
  std::vector<std::string> targets_keys;  // 32 bytes each
};

// The document: `meta` signed by every signer (bounds checked).
storage::Expected<std::string> sign_root(const RootMetadata& meta,
                                         const std::vector<Signer*>& signers);
storage::Expected<RootMetadata> parse_root_document(const std::string& document);

// The chain fleetd sends: root-v1.meta, root-v2.meta, ... back to back ("" when none).
storage::Expected<std::string> load_root_chain(const std::string& dir);

// Root-side operations (fleetctl keys; the root folder must hold the current root keys).
// Each signs version N+1 with a threshold of root N's keys and writes it to both folders.
// A new root: `key_count` fresh keys, `threshold` of them needed; the old keys are moved
// to root_dir/retired/ and fleetd's targets key is certified again by the new root.key.
storage::Expected<RootMetadata> rotate_root(const std::string& root_dir,
                                            const std::string& targets_dir, uint8_t key_count,
                                            uint8_t threshold);
// Leaves a targets key (32 bytes) out of the next version: devices refuse its offers.
storage::Expected<RootMetadata> revoke_targets_key(const std::string& root_dir,
                                                   const std::string& targets_dir,
                                                   const std::string& public_key);
// How far one offer may move a device's release counter from the next version on.
storage::Expected<RootMetadata> set_release_step(const std::string& root_dir,
                                                 const std::string& targets_dir, uint64_t step);
// Lists `public_key` as a targets key (with the one listed last before it, so offers in
// flight stay valid until it is revoked); the first version when there is none yet.
storage::Expected<RootMetadata> list_targets_key(const std::string& root_dir,
                                                 const std::string& targets_dir,
                                                 const std::string& public_key);

}  // namespace tinyfleet::update
