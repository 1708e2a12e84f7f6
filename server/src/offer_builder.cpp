#include "tinyfleet/server/offer_builder.h"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "tinyfleet/optimizer_service/device_class.h"
#include "tinyfleet/server/log.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/update/offer_signer.h"
#include "tinyfleet/update/sodium_crypto.h"

namespace tinyfleet::server {

using storage::Error;
using storage::ErrorCode;

namespace {

std::string unhex(const std::string& hex) {
  std::string raw(hex.size() / 2, '\0');
  size_t len = 0;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(raw.data()), raw.size(), hex.data(),
                     hex.size(), nullptr, &len, nullptr) != 0 ||
      len != raw.size()) {
    return "";
  }
  return raw;
}

std::string sha256_raw(const std::string& s) {
  std::string d(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(d.data()),
                     reinterpret_cast<const unsigned char*>(s.data()), s.size());
  return d;
}

std::string hex(const std::string& raw) { return update::to_hex_string(raw); }

}  // namespace

OfferBuilder::OfferBuilder(storage::Database& db, storage::BlobStore& blobs, update::TargetsKey key,
                           uint32_t chunk_size, uint32_t expiry_days)
    : db_(db),
      blobs_(blobs),
      key_(std::move(key)),
      signer_(std::make_unique<update::SodiumSigner>(key_.secret_key)),
      chunk_size_(chunk_size),
      expiry_days_(expiry_days) {}

storage::Expected<update::DeltaOptions> OfferBuilder::delta_options(
    const std::string& device_class) {
  const auto now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::steady_clock::now().time_since_epoch())
                                             .count());
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = classes_.find(device_class);
    if (it != classes_.end() && now < it->second.first + kClassSpecSeconds) {
      return it->second.second;
    }
  }
  auto spec = db_.transact(
      [&](pqxx::work& w) { return storage::device_classes::get(w, device_class).spec_json; });
  if (!spec) return spec.error();
  auto cls = optimizer_service::parse_device_class(device_class, *spec);
  if (!cls) return Error{ErrorCode::kFailedPrecondition, cls.error().message};
  const auto budget = cls->delta_budget();
  update::DeltaOptions o;
  o.max_window_log = budget.max_window_log;
  o.max_decoder_bytes = static_cast<size_t>(budget.max_decoder_bytes);
  for (const auto& codec : budget.codecs) {  // names checked when the class was parsed
    for (int c = update::DeltaCodec_MIN; c <= update::DeltaCodec_MAX; ++c) {
      if (codec == update::EnumNameDeltaCodec(static_cast<update::DeltaCodec>(c))) {
        o.allowed_codecs |= 1u << c;
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  classes_[device_class] = {now, o};
  return o;
}

storage::Expected<std::string> OfferBuilder::artifact(const std::string& sha256) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = bases_.find(sha256); it != bases_.end()) return it->second;
  }
  auto bytes = blobs_.get(sha256);
  if (!bytes) return bytes.error();
  // What fleetd signs must be what was stored: a blob whose bytes no longer hash to
  // its name (corrupted in the database or on the way) is refused, never signed.
  if (const std::string actual = hex(sha256_raw(*bytes)); actual != sha256) {
    log::error("offer.blob_corrupt", {{"sha256", sha256},
                                      {"actual_sha256", actual},
                                      {"size", static_cast<int64_t>(bytes->size())}});
    return Error{ErrorCode::kInternal, "blob " + sha256 + " is corrupt: its " +
                                           std::to_string(bytes->size()) + " bytes hash to " +
                                           actual + "; not signed"};
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (bases_.size() > 64) bases_.clear();
  bases_[sha256] = *bytes;
  return *bytes;
}

storage::Expected<std::shared_ptr<const OfferBuilder::Target>> OfferBuilder::target(
    const std::string& sha256) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = targets_.find(sha256); it != targets_.end()) return it->second;
  }
  auto bytes = artifact(sha256);
  if (!bytes) return bytes.error();
  auto outputs =
      db_.transact([&](pqxx::work& w) { return storage::artifacts::outputs_by_sha256(w, sha256); });
  if (!outputs) return outputs.error();
  if (!*outputs) {
    return Error{ErrorCode::kFailedPrecondition,
                 "artifact " + sha256 +
                     " has no stored compile outputs (self-tests, drift baseline, cycles): "
                     "compile its model version again"};
  }
  auto t = std::make_shared<Target>();
  t->bytes = *bytes;
  t->outputs = std::move(**outputs);
  std::lock_guard<std::mutex> lock(mu_);
  if (targets_.size() > 64) targets_.clear();
  targets_[sha256] = t;
  return std::shared_ptr<const Target>(t);
}

std::optional<std::string> OfferBuilder::signing_refusal(uint64_t now_unix) const {
  if (now_unix < key_.expires_at) return std::nullopt;
  return "fleetd's targets key expired at " + std::to_string(key_.expires_at) +
         " (unix): devices refuse offers under it; rotate it ('fleetctl keys rotate') and "
         "restart fleetd";
}

storage::Expected<BuiltOffer> OfferBuilder::build_no_model(const OfferRequest& r,
                                                           uint64_t now_unix) {
  if (auto why = signing_refusal(now_unix)) return Error{ErrorCode::kFailedPrecondition, *why};
  update::ManifestFields f;
  f.fleet = r.fleet;
  f.device_class = r.device_class;
  f.device_id = r.device_id;
  f.release_seq = r.release_seq;
  f.expires_at = std::min(now_unix + uint64_t{expiry_days_} * 86400, key_.expires_at);
  f.kind = update::OfferKind_NoModel;
  BuiltOffer out;
  out.offer = update::sign_offer(f, key_);
  out.payload_sha256 = hex(sha256_raw(""));  // nothing to download
  return out;
}

storage::Expected<BuiltOffer> OfferBuilder::build(const OfferRequest& r, uint64_t now_unix) {
  if (auto why = signing_refusal(now_unix)) return Error{ErrorCode::kFailedPrecondition, *why};
  auto t = target(r.target_sha256);
  if (!t) return t.error();
  std::string base;
  if (use_deltas_ && !r.base_sha256.empty()) {
    auto b = artifact(r.base_sha256);
    // A base the server does not hold (a factory image): send the whole target.
    if (b) base = *b;
  }
  const auto options = delta_options(r.device_class);
  if (!options) return options.error();
  storage::Expected<std::shared_ptr<const update::Delta>> delta =
      std::shared_ptr<const update::Delta>();
  const bool decodes_full = options->allowed_codecs == 0 ||
                            (options->allowed_codecs & (1u << update::DeltaCodec_Full)) != 0;
  if (base.empty() && decodes_full) {
    // Nothing to patch: the whole artifact (a device's first model), compressed once.
    delta = deltas_.full((*t)->bytes, {});
    if (!delta) return delta.error();
  } else if (base.empty()) {
    // A class that does not decode Full (the Cortex-M4 firmware): a delta from nothing in
    // a codec it does, encoded once per target like any delta (a first rollout to 10,000
    // such devices spent minutes re-encoding it per device).
    delta = deltas_.get("", (*t)->bytes, {}, update::artifact_segments((*t)->bytes), *options);
    if (!delta) return delta.error();
  } else {
    delta = deltas_.get(base, (*t)->bytes, update::artifact_segments(base),
                        update::artifact_segments((*t)->bytes), *options);
    if (!delta) return delta.error();
  }

  update::ManifestFields f;
  f.fleet = r.fleet;
  f.device_class = r.device_class;
  f.model = r.model;
  f.model_version = r.model_version;
  f.release_seq = r.release_seq;
  f.device_id = r.device_id;
  f.target_sha256 = sha256_raw((*t)->bytes);
  if (hex(f.target_sha256) != r.target_sha256) {  // the cache must hold what was asked for
    return Error{ErrorCode::kInternal, "artifact " + r.target_sha256 + " does not hash to itself"};
  }
  f.target_size = (*t)->bytes.size();
  // A delta from nothing names the base the device has (zeros: none).
  f.base_sha256 = (*delta)->codec == update::DeltaCodec_Full ? ""
                  : r.base_sha256.empty()                    ? std::string(32, '\0')
                                                             : unhex(r.base_sha256);
  f.codec = (*delta)->codec;
  f.payload_sha256 = sha256_raw((*delta)->payload);
  f.payload_size = (*delta)->payload.size();
  f.chunk_size = chunk_size_;
  f.expires_at = std::min(now_unix + uint64_t{expiry_days_} * 86400, key_.expires_at);
  const auto& o = (*t)->outputs;
  for (const auto& v : o.self_tests) f.self_tests.emplace_back(v.input, v.output);
  f.class_histogram = o.class_histogram;
  f.mean_top1_confidence = o.mean_top1_confidence;
  f.channel_mean = o.channel_mean;
  f.channel_std = o.channel_std;
  f.modelled_cycles = static_cast<uint64_t>(o.modelled_cycles);
  BuiltOffer out;
  // A PKCS#11 session signs one message at a time: builds on several threads take turns.
  std::unique_lock<std::mutex> signing(sign_mu_);
  auto signed_offer = update::sign_offer(f, key_, *signer_, root_chain_);
  signing.unlock();
  if (!signed_offer) return signed_offer.error();
  out.offer = std::move(*signed_offer);
  out.payload = (*delta)->payload;
  out.payload_sha256 = hex(f.payload_sha256);
  out.codec = static_cast<int>((*delta)->codec);
  return out;
}

}  // namespace tinyfleet::server
