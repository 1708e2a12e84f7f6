#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "tinyfleet/server/delta_cache.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/update/update_keys.h"

namespace tinyfleet::server {

// What one device is offered: the signed offer and the payload it downloads.
struct BuiltOffer {
  std::string offer;           // SignedOffer FlatBuffer
  std::string payload;         // the delta (or full artifact) the chunks come from
  std::string payload_sha256;  // hex
  int codec = 0;
};

struct OfferRequest {
  std::string fleet = "default";
  std::string device_class;
  std::string class_spec_json;  // the class (RAM decides the delta codec's memory)
  std::string base_sha256;      // hex; empty: the device runs nothing yet
  std::string target_sha256;    // hex, a compiled artifact
  std::string target_report_json;
  std::string model;
  uint32_t model_version = 0;
  uint64_t release_seq = 0;
};

// Builds signed offers: the delta from the artifact the device runs to the target (each
// (base, target) pair encoded once), self-test vectors from running the target on the
// kernels runtime, the drift baseline and modelled cycles from the compile report.
class OfferBuilder {
 public:
  OfferBuilder(storage::BlobStore& blobs, update::TargetsKey key, uint32_t chunk_size = 1024,
               uint32_t expiry_days = 30);
  storage::Expected<BuiltOffer> build(const OfferRequest& request, uint64_t now_unix);
  const DeltaCache& deltas() const { return deltas_; }
  // false: every offer carries the whole artifact (zstd), never a delta.
  void set_use_deltas(bool on) { use_deltas_ = on; }

 private:
  struct Target {
    std::string bytes;
    std::vector<std::pair<std::string, std::string>> self_tests;
  };
  storage::Expected<std::shared_ptr<const Target>> target(const std::string& sha256);
  storage::Expected<std::string> artifact(const std::string& sha256);

  storage::BlobStore& blobs_;
  update::TargetsKey key_;
  uint32_t chunk_size_, expiry_days_;
  bool use_deltas_ = true;
  DeltaCache deltas_{64};
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const Target>> targets_;
  std::map<std::string, std::string> bases_;
};

}  // namespace tinyfleet::server
