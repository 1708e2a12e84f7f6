#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tinyfleet/storage/error.h"
#include "tinyfleet/update/signer.h"
#include "tinyfleet/update/update_generated.h"
#include "tinyfleet/update/update_keys.h"

namespace tinyfleet::update {

// Everything a manifest binds (see update/schema/update.fbs).
struct ManifestFields {
  std::string fleet = "default";
  std::string device_class;
  std::string model;
  uint32_t model_version = 0;
  uint64_t release_seq = 0;
  std::string target_sha256;  // 32 raw bytes
  uint64_t target_size = 0;
  std::string base_sha256;  // 32 raw bytes, empty for a full artifact
  update::DeltaCodec codec = update::DeltaCodec_Full;
  std::string payload_sha256;  // 32 raw bytes
  uint64_t payload_size = 0;
  uint32_t chunk_size = 4096;
  uint64_t expires_at = 0;
  std::vector<std::pair<std::string, std::string>> self_tests;  // input, expected output
  uint8_t self_test_tolerance = 0;
  std::vector<float> class_histogram;
  float mean_top1_confidence = 0;
  std::vector<float> channel_mean;
  std::vector<float> channel_std;
  uint64_t modelled_cycles = 0;  // per inference on the class (energy telemetry)
  std::string device_id;         // the one device the offer is for (required by devices)
  update::OfferKind kind = update::OfferKind_Model;
};

// The manifest FlatBuffer, signed with the targets key, with its certificate.
std::string sign_offer(const ManifestFields& fields, const TargetsKey& key);
// The same through a Signer (a file key or a PKCS#11 token) holding the key `certificate`
// certifies, carrying the root metadata chain (root_keys.h; "" for none).
storage::Expected<std::string> sign_offer(const ManifestFields& fields,
                                          const TargetsKey& certificate, Signer& signer,
                                          const std::string& root_chain);

}  // namespace tinyfleet::update
