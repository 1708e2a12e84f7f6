#include "tinyfleet/update/offer_signer.h"

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

// The offer as `signer` signs it, whatever key `key` certifies (the tests make mismatched
// ones on purpose; sign_offer with a Signer refuses them).
storage::Expected<std::string> assemble(const ManifestFields& f, const TargetsKey& key,
                                        Signer& signer, const std::string& root_chain) {
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

  auto signature =
      signer.sign(std::string(reinterpret_cast<const char*>(mb.GetBufferPointer()), mb.GetSize()));
  if (!signature) return signature.error();

  flatbuffers::FlatBufferBuilder ob(mb.GetSize() + root_chain.size() + 512);
  auto manifest_bytes = ob.CreateVector(mb.GetBufferPointer(), mb.GetSize());
  auto cert = update::CreateTargetsCertificate(ob, bytes(ob, key.public_key), key.expires_at,
                                               bytes(ob, key.root_signature));
  auto chain = root_chain.empty() ? 0 : bytes(ob, root_chain);
  auto offer = update::CreateSignedOffer(ob, manifest_bytes, cert, bytes(ob, *signature), chain);
  update::FinishSignedOfferBuffer(ob, offer);
  return std::string(reinterpret_cast<const char*>(ob.GetBufferPointer()), ob.GetSize());
}

}  // namespace

storage::Expected<std::string> sign_offer(const ManifestFields& f, const TargetsKey& key,
                                          Signer& signer, const std::string& root_chain) {
  if (signer.public_key() != key.public_key) {
    return storage::Error{storage::ErrorCode::kFailedPrecondition,
                          "the signing key is not the one targets.cert certifies"};
  }
  return assemble(f, key, signer, root_chain);
}

std::string sign_offer(const ManifestFields& f, const TargetsKey& key) {
  SodiumSigner signer(key.secret_key);
  auto offer = assemble(f, key, signer, "");
  return offer ? *offer : std::string();
}

}  // namespace tinyfleet::update
