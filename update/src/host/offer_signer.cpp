#include "tinyfleet/update/offer_signer.h"

#include <sodium.h>

namespace tinyfleet::update {

namespace {
flatbuffers::Offset<flatbuffers::Vector<uint8_t>> bytes(flatbuffers::FlatBufferBuilder& b,
                                                        const std::string& s) {
  return b.CreateVector(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
flatbuffers::Offset<flatbuffers::Vector<int8_t>> sbytes(flatbuffers::FlatBufferBuilder& b,
                                                        const std::string& s) {
  return b.CreateVector(reinterpret_cast<const int8_t*>(s.data()), s.size());
}
}  // namespace

std::string sign_offer(const ManifestFields& f, const TargetsKey& key) {
  flatbuffers::FlatBufferBuilder mb(1024);
  std::vector<flatbuffers::Offset<update::SelfTest>> tests;
  for (const auto& [input, expected] : f.self_tests) {
    tests.push_back(update::CreateSelfTest(mb, sbytes(mb, input), sbytes(mb, expected)));
  }
  auto baseline =
      update::CreateDriftBaseline(mb, mb.CreateVector(f.class_histogram), f.mean_top1_confidence,
                                  mb.CreateVector(f.channel_mean), mb.CreateVector(f.channel_std));
  auto manifest = update::CreateManifest(
      mb, 1, mb.CreateString(f.fleet), mb.CreateString(f.device_class), mb.CreateString(f.model),
      f.model_version, f.release_seq, bytes(mb, f.target_sha256), f.target_size,
      bytes(mb, f.base_sha256), f.codec, bytes(mb, f.payload_sha256), f.payload_size, f.chunk_size,
      f.expires_at, mb.CreateVector(tests), f.self_test_tolerance, baseline, f.modelled_cycles,
      mb.CreateString(f.device_id), f.kind);
  mb.Finish(manifest);

  std::string signature(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), nullptr,
                       mb.GetBufferPointer(), mb.GetSize(),
                       reinterpret_cast<const unsigned char*>(key.secret_key.data()));

  flatbuffers::FlatBufferBuilder ob(mb.GetSize() + 512);
  auto manifest_bytes = ob.CreateVector(mb.GetBufferPointer(), mb.GetSize());
  auto cert = update::CreateTargetsCertificate(ob, bytes(ob, key.public_key), key.expires_at,
                                               bytes(ob, key.root_signature));
  auto offer = update::CreateSignedOffer(ob, manifest_bytes, cert, bytes(ob, signature));
  update::FinishSignedOfferBuffer(ob, offer);
  return std::string(reinterpret_cast<const char*>(ob.GetBufferPointer()), ob.GetSize());
}

}  // namespace tinyfleet::update
