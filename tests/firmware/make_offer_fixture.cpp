// Host side of the firmware crypto check: checks the RFC 8032 vectors with the host's
// libsodium (so a copying error in rfc8032_vectors.h fails here, not as a false alarm on
// the target), then makes a fleet's keys and signs an update offer for the
// cortex-m4-256k class with update_host's signer, for the target to check.
// Then a v1 -> v2 update of a small artifact (fixture_model.h): the TensorRange delta made
// by update_host's encoder and its signed offer, with v2's host output as self-test.
//   make_offer_fixture DIR  ->  DIR/offer.bin, root.pub (check_offer cases),
//                               v1.tfa, input.bin, v1_output.bin, delta.bin, delta_offer.bin,
//                               revoked_offer.bin, old_offer.bin, stranger_offer.bin (tamper)
//   make_offer_fixture DIR DIGITS_V1.tfa DIGITS_V2.tfa: also digits_v1.tfa, digits_v1_output.bin,
//                               digits_delta.bin, digits_offer.bin (digits_cnn v1 -> v2, release 8:
//                               the instruction bench and the reference firmware)
#include <sodium.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "fixture_constants.h"
#include "fixture_model.h"
#include "rfc8032_vectors.h"
#include "tinyfleet/update/delta_encoder.h"
#include "tinyfleet/update/offer_signer.h"
#include "tinyfleet/update/root_keys.h"
#include "tinyfleet/update/update_keys.h"

using namespace tinyfleet;
namespace ft = tinyfleet::firmware_test;

namespace {
std::string unhex(const char* h) {
  std::string out;
  for (size_t i = 0; h[i] && h[i + 1]; i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(h + i, 2), nullptr, 16)));
  }
  return out;
}
const unsigned char* u(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
bool write(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f << bytes;
  return static_cast<bool>(f);
}
std::string read(const char* path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 4) {
    std::fprintf(stderr, "usage: make_offer_fixture DIR [DIGITS_V1.tfa DIGITS_V2.tfa]\n");
    return 2;
  }
  if (sodium_init() < 0) return 1;
  for (const auto& v : ft::kRfc8032Vectors) {
    const std::string seed = unhex(v.secret_key), msg = unhex(v.message);
    unsigned char pk[32], sk[64], sig[64];
    crypto_sign_seed_keypair(pk, sk, u(seed));
    crypto_sign_detached(sig, nullptr, u(msg), msg.size(), sk);
    if (std::string(reinterpret_cast<char*>(pk), 32) != unhex(v.public_key) ||
        std::string(reinterpret_cast<char*>(sig), 64) != unhex(v.signature)) {
      std::fprintf(stderr, "RFC 8032 %s: the host's libsodium disagrees with the vector\n", v.name);
      return 1;
    }
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::remove_all(dir / "keys");
  std::filesystem::remove_all(dir / "stranger-keys");
  std::filesystem::create_directories(dir);
  auto key = update::init_keys((dir / "keys").string(), ft::kNow, 30);
  if (!key) {
    std::fprintf(stderr, "keys: %s\n", key.error().message.c_str());
    return 1;
  }
  const auto root = update::load_root_public_key((dir / "keys").string());
  if (!root) return 1;
  update::ManifestFields f;
  f.fleet = ft::kFleet;
  f.device_class = ft::kClass;
  f.device_id = ft::kDevice;
  f.model = "digits";
  f.model_version = 2;
  f.release_seq = ft::kRelease;
  f.target_sha256 = std::string(32, 'T');
  f.target_size = 9000;
  f.base_sha256 = std::string(32, '\0');  // a device provisioned without a model
  f.codec = update::DeltaCodec_TensorRange;
  f.payload_sha256 = std::string(32, 'P');
  f.payload_size = ft::kPayloadSize;
  f.chunk_size = ft::kChunkSize;
  f.expires_at = ft::kNow + 3600;
  f.class_histogram = std::vector<float>(10, 0.1f);
  if (!write(dir / "offer.bin", update::sign_offer(f, *key)) || !write(dir / "root.pub", *root)) {
    return 1;
  }

  // The v1 -> v2 update the agent applies on the target.
  const std::string v1 = ft::fixture_artifact(1), v2 = ft::fixture_artifact(2);
  const std::string input = ft::fixture_input();
  const std::string out1 = ft::run_on_host(v1, input), out2 = ft::run_on_host(v2, input);
  if (out1.empty() || out2.empty() || out1 == out2) {
    std::fprintf(stderr, "fixture model: does not run on the host, or v2 = v1\n");
    return 1;
  }
  update::DeltaOptions options;
  auto delta = update::encode_tensor_range(v1, v2, update::artifact_segments(v1),
                                           update::artifact_segments(v2), options);
  if (!delta) {
    std::fprintf(stderr, "delta: %s\n", delta.error().message.c_str());
    return 1;
  }
  update::ManifestFields d = ft::fixture_manifest(v1, v2, *delta, 2, ft::kDeltaChunkSize);
  d.release_seq = ft::kDeltaRelease;
  d.self_tests = {{input, out2}};
  // The root rotates before the update (v2: a new root key; the targets key re-certified):
  // the device walks the chain the delta offer carries from the key it pinned (root.pub,
  // written above). Then the targets key is replaced and revoked (v3, v4): an offer under
  // it, carrying that chain, must be refused.
  const std::string keys = (dir / "keys").string();
  const auto signed_with_chain = [&](const update::ManifestFields& m, const update::TargetsKey& k) {
    update::SodiumSigner signer(k.secret_key);
    auto o = update::sign_offer(m, k, signer, update::load_root_chain(keys).value());
    return o ? *o : std::string();
  };
  if (!update::rotate_root(keys, keys, 1, 1)) return 1;
  const auto recertified = update::load_targets_key(keys);
  if (!recertified) return 1;
  const std::string delta_offer = signed_with_chain(d, *recertified);
  // Tamper cases on the target: the same update at an older release (anti-rollback once
  // release 8 runs), and signed by a targets key another fleet's root certifies.
  update::ManifestFields older = d;
  older.release_seq = ft::kDeltaRelease - 1;
  const std::string old_offer = signed_with_chain(older, *recertified);
  const auto stranger = update::init_keys((dir / "stranger-keys").string(), ft::kNow, 30);
  if (!stranger) return 1;
  // The instruction bench: digits_cnn v1 -> v2 as tinyfleet-compile made them for
  // cortex-m4-256k, its TensorRange delta and signed offer (release 8, v2's host output
  // as self-test); without them, empty files (the bench prints nothing).
  std::string digits_v1, digits_v2, digits_out1, digits_delta, digits_offer;
  if (argc == 4) {
    digits_v1 = read(argv[2]);
    digits_v2 = read(argv[3]);
    digits_out1 = ft::run_on_host(digits_v1, input);
    const std::string digits_out2 = ft::run_on_host(digits_v2, input);
    auto dd =
        update::encode_tensor_range(digits_v1, digits_v2, update::artifact_segments(digits_v1),
                                    update::artifact_segments(digits_v2), options);
    if (digits_out1.empty() || digits_out2.empty() || !dd) {
      std::fprintf(stderr, "digits_cnn: does not run on the host, or no delta\n");
      return 1;
    }
    update::ManifestFields m = ft::fixture_manifest(digits_v1, digits_v2, *dd, 2, 256);
    m.model = "digits_cnn";
    m.release_seq = d.release_seq;
    m.self_tests = {{input, digits_out2}};
    digits_delta = dd->payload;
    digits_offer = signed_with_chain(m, *recertified);
  }
  if (!update::rotate_targets_key(keys, keys, ft::kNow, 30) ||
      !update::revoke_targets_key(keys, keys, recertified->public_key)) {
    return 1;
  }
  update::ManifestFields r = d;
  r.release_seq = ft::kDeltaRelease + 1;
  if (!write(dir / "v1.tfa", v1) || !write(dir / "input.bin", input) ||
      !write(dir / "v1_output.bin", out1) || !write(dir / "delta.bin", delta->payload) ||
      !write(dir / "delta_offer.bin", delta_offer) ||
      !write(dir / "revoked_offer.bin", signed_with_chain(r, *recertified)) ||
      !write(dir / "old_offer.bin", old_offer) ||
      !write(dir / "stranger_offer.bin", update::sign_offer(d, *stranger)) ||
      !write(dir / "digits_v1.tfa", digits_v1) ||
      !write(dir / "digits_v1_output.bin", digits_out1) ||
      !write(dir / "digits_delta.bin", digits_delta) ||
      !write(dir / "digits_offer.bin", digits_offer)) {
    return 1;
  }
  std::printf(
      "RFC 8032 vectors agree with the host's libsodium; offers signed; v1 %zu B -> "
      "v2 %zu B, TensorRange delta %zu B\n",
      v1.size(), v2.size(), delta->payload.size());
  return 0;
}
