#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "tinyfleet/server/delta_cache.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/storage/records.h"
#include "tinyfleet/update/signer.h"
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
  std::string device_class;   // its DeviceClass decides the delta budget
  std::string base_sha256;    // hex; empty: the device runs nothing yet
  std::string target_sha256;  // hex, a compiled artifact with stored compile outputs
  std::string model;
  uint32_t model_version = 0;
  uint64_t release_seq = 0;
  std::string device_id;  // the one device the offer is for (devices refuse any other)
};

// Builds signed offers: the delta from the artifact the device runs to the target (each
// (base, target) pair encoded once) within the class's delta budget
// (optimizer_service::DeviceClass::delta_budget), and the self-test vectors, drift
// baseline and modelled cycles the compiler stored with the target
// (storage::artifacts::outputs_by_sha256). Nothing is loaded, run or parsed from JSON
// but the class spec. build() and build_no_model() may be called from several threads.
class OfferBuilder {
 public:
  OfferBuilder(storage::Database& db, storage::BlobStore& blobs, update::TargetsKey key,
               uint32_t chunk_size = 1024, uint32_t expiry_days = 30);
  // Refused (kFailedPrecondition, signing_refusal's reason) once the targets key has
  // expired; an offer never outlives the key's certificate (its expiry is capped there).
  storage::Expected<BuiltOffer> build(const OfferRequest& request, uint64_t now_unix);
  // A signed "no model" offer (Manifest.kind NoModel) for request.device_id: the revert
  // of a device that ran no model before the rollout. No target, payload or self-tests.
  storage::Expected<BuiltOffer> build_no_model(const OfferRequest& request, uint64_t now_unix);
  // Why fleetd must not sign at `now_unix` (its targets key expired), or nullopt.
  std::optional<std::string> signing_refusal(uint64_t now_unix) const;
  uint64_t key_expires_at() const { return key_.expires_at; }
  const DeltaCache& deltas() const { return deltas_; }
  // false: every offer carries the whole artifact (zstd), never a delta.
  void set_use_deltas(bool on) { use_deltas_ = on; }
  // Signs through `signer` (a PKCS#11 token) instead of the key's secret half; it must
  // hold the key the certificate names. Call before the first build.
  void set_signer(std::unique_ptr<update::Signer> signer) { signer_ = std::move(signer); }
  // The root metadata chain every offer carries (update::load_root_chain of keys.dir).
  void set_root_chain(std::string chain) { root_chain_ = std::move(chain); }

 private:
  struct Target {
    std::string bytes;
    storage::ArtifactOutputs outputs;
  };
  storage::Expected<std::shared_ptr<const Target>> target(const std::string& sha256);
  storage::Expected<std::string> artifact(const std::string& sha256);
  storage::Expected<update::DeltaOptions> delta_options(const std::string& device_class);

  storage::Database& db_;
  storage::BlobStore& blobs_;
  update::TargetsKey key_;
  std::unique_ptr<update::Signer> signer_;
  std::string root_chain_;
  uint32_t chunk_size_, expiry_days_;
  bool use_deltas_ = true;
  DeltaCache deltas_{64};
  std::mutex mu_;
  std::mutex sign_mu_;  // build() may run on several threads; the signer on one
  std::map<std::string, std::shared_ptr<const Target>> targets_;
  std::map<std::string, std::string> bases_;
  // Delta options per class name, re-read from the class spec after kClassSpecSeconds.
  static constexpr uint64_t kClassSpecSeconds = 10;
  std::map<std::string, std::pair<uint64_t, update::DeltaOptions>> classes_;
};

}  // namespace tinyfleet::server
