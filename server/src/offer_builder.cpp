#include "tinyfleet/server/offer_builder.h"

#include <sodium.h>

#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>

#include "tinyfleet/device_agent/linux/kernels_runner.h"
#include "tinyfleet/update/offer_signer.h"

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

std::string hex(const std::string& raw) {
  std::string out(raw.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                 raw.size());
  out.pop_back();
  return out;
}

// What a class can spend on applying a delta: small MCUs get the LZMA codec (~50 KB),
// larger ones any codec within a 128 KB window.
update::DeltaOptions delta_options(const std::string& class_spec_json) {
  update::DeltaOptions o;
  const auto spec = nlohmann::json::parse(class_spec_json, nullptr, false);
  const uint64_t ram = spec.is_object() ? spec.value("ram_bytes", uint64_t{0}) : 0;
  if (ram != 0 && ram <= 512 * 1024) {
    o.max_window_log = 14;
    o.max_decoder_bytes = 64 * 1024;
  }
  return o;
}

}  // namespace

OfferBuilder::OfferBuilder(storage::BlobStore& blobs, update::TargetsKey key, uint32_t chunk_size,
                           uint32_t expiry_days)
    : blobs_(blobs), key_(std::move(key)), chunk_size_(chunk_size), expiry_days_(expiry_days) {}

storage::Expected<std::string> OfferBuilder::artifact(const std::string& sha256) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = bases_.find(sha256); it != bases_.end()) return it->second;
  }
  auto bytes = blobs_.get(sha256);
  if (!bytes) return bytes.error();
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
  auto t = std::make_shared<Target>();
  t->bytes = *bytes;
  // Self-test vectors: the target on the runtime the devices run, on two fixed inputs.
  std::vector<uint8_t> aligned(t->bytes.size() + 16);
  auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(aligned.data()) + 15) &
                                       ~uintptr_t{15});
  std::memcpy(a, t->bytes.data(), t->bytes.size());
  device_agent::linux_port::KernelsRunner runner;
  const char* why = "";
  if (!runner.load(a, t->bytes.size(), &why)) {
    return Error{ErrorCode::kFailedPrecondition,
                 "artifact " + sha256 + " does not load on the runtime: " + why};
  }
  for (int k = 0; k < 2; ++k) {
    std::string in(runner.input_bytes(), '\0'), out(runner.output_bytes(), '\0');
    for (size_t i = 0; i < in.size(); ++i) {
      in[i] = static_cast<char>(k == 0 ? runner.input_zero_point() : (i * 37 + 11) % 256 - 128);
    }
    if (!runner.run(reinterpret_cast<const int8_t*>(in.data()),
                    reinterpret_cast<int8_t*>(out.data()))) {
      return Error{ErrorCode::kFailedPrecondition, "artifact " + sha256 + " does not run"};
    }
    t->self_tests.emplace_back(in, out);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (targets_.size() > 64) targets_.clear();
  targets_[sha256] = t;
  return std::shared_ptr<const Target>(t);
}

storage::Expected<BuiltOffer> OfferBuilder::build(const OfferRequest& r, uint64_t now_unix) {
  auto t = target(r.target_sha256);
  if (!t) return t.error();
  std::string base;
  if (use_deltas_ && !r.base_sha256.empty()) {
    auto b = artifact(r.base_sha256);
    // A base the server does not hold (a factory image): send the whole target.
    if (b) base = *b;
  }
  const update::DeltaOptions options = delta_options(r.class_spec_json);
  storage::Expected<std::shared_ptr<const update::Delta>> delta =
      std::shared_ptr<const update::Delta>();
  if (base.empty()) {
    // Nothing to patch: the whole artifact (a device's first model).
    auto full = update::encode_full((*t)->bytes, {});
    if (!full) return full.error();
    delta = std::make_shared<const update::Delta>(std::move(*full));
  } else {
    delta = deltas_.get(base, (*t)->bytes, update::artifact_segments(base),
                        update::artifact_segments((*t)->bytes), options);
    if (!delta) return delta.error();
  }

  update::ManifestFields f;
  f.fleet = r.fleet;
  f.device_class = r.device_class;
  f.model = r.model;
  f.model_version = r.model_version;
  f.release_seq = r.release_seq;
  f.target_sha256 = sha256_raw((*t)->bytes);
  f.target_size = (*t)->bytes.size();
  f.base_sha256 = (*delta)->codec == update::DeltaCodec_Full ? "" : unhex(r.base_sha256);
  f.codec = (*delta)->codec;
  f.payload_sha256 = sha256_raw((*delta)->payload);
  f.payload_size = (*delta)->payload.size();
  f.chunk_size = chunk_size_;
  f.expires_at = now_unix + uint64_t{expiry_days_} * 86400;
  f.self_tests = (*t)->self_tests;
  const auto report = nlohmann::json::parse(r.target_report_json, nullptr, false);
  if (report.is_object()) {
    if (report.contains("drift_baseline")) {
      const auto& d = report["drift_baseline"];
      f.class_histogram = d.value("class_histogram", std::vector<float>{});
      f.mean_top1_confidence = d.value("mean_top1_confidence", 0.0f);
      f.channel_mean = d.value("channel_mean", std::vector<float>{});
      f.channel_std = d.value("channel_std", std::vector<float>{});
    }
    f.modelled_cycles = static_cast<uint64_t>(report.value("cycles", 0.0));
  }
  BuiltOffer out;
  out.offer = update::sign_offer(f, key_);
  out.payload = (*delta)->payload;
  out.payload_sha256 = hex(f.payload_sha256);
  out.codec = static_cast<int>((*delta)->codec);
  return out;
}

}  // namespace tinyfleet::server
