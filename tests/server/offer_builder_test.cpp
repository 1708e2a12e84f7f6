// Offers from the typed compile outputs stored with the artifact: the self-tests in a
// built offer are the artifact's own outputs on the kernels' runtime (run here, apart
// from the compiler), the drift baseline and cycles are the compiler's; fleetd neither
// loads the artifact nor parses the report. Real PostgreSQL.
#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>
#include <filesystem>

#include "tinyfleet/kernels/runtime/interpreter.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/server/compile_orchestrator.h"
#include "tinyfleet/server/model_compiler.h"
#include "tinyfleet/server/offer_builder.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/testing/scratch_database.h"
#include "tinyfleet/testing/softhsm_token.h"
#include "tinyfleet/update/offer.h"
#include "tinyfleet/update/pkcs11_signer.h"
#include "tinyfleet/update/root_keys.h"
#include "tinyfleet/update/sodium_crypto.h"
#include "tinyfleet/update/update_generated.h"

using namespace tinyfleet;
using tinyfleet::testing::fixture_path;

namespace {

constexpr uint64_t kNow = 1795305600;
const char* kM4 =
    R"({"ram_bytes":262144,"flash_bytes":1048576,"clock_hz":80000000,"runtime_ram_bytes":4096,
        "runtime_flash_bytes":24576,"cycles_per_mac":{"conv":1.2,"depthwise":2.0,
        "fully_connected":1.1,"other":4.0}})";

std::string run_artifact(const std::string& artifact, const std::string& input) {
  std::vector<uint8_t> bytes(artifact.size() + 16);
  auto* a =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(bytes.data()) + 15) & ~uintptr_t{15});
  std::memcpy(a, artifact.data(), artifact.size());
  kernels::Interpreter interp;
  EXPECT_EQ(interp.load(a, artifact.size()).status, kernels::LoadStatus::kOk);
  std::vector<uint8_t> arena(interp.arena_bytes());
  interp.bind_arena(arena.data(), arena.size());
  EXPECT_EQ(interp.input(0).bytes, input.size());
  std::memcpy(interp.input(0).data, input.data(), input.size());
  EXPECT_EQ(interp.invoke().status, kernels::LoadStatus::kOk);
  return std::string(static_cast<const char*>(interp.output(0).data), interp.output(0).bytes);
}

class OfferBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    keys_ = std::filesystem::temp_directory_path() / ("tf-offer-keys-" + std::to_string(getpid()));
    std::filesystem::remove_all(keys_);
    auto k = update::init_keys(keys_.string(), kNow, 30);
    ASSERT_TRUE(k) << k.error().message;
    key_ = *k;
  }
  void TearDown() override { std::filesystem::remove_all(keys_); }

  // Compiles `model` for cortex-m4-256k in process and stores it as the orchestrator
  // does (the compiler's outputs with the row); returns the artifact's sha256.
  std::string compile_and_store(const std::string& model, server::CompileOutcome* outcome) {
    auto onnx = optimizer_service::read_file(fixture_path("models/" + model + ".onnx"));
    auto calib = optimizer_service::read_file(fixture_path("data/digits_calib.npz"));
    EXPECT_TRUE(onnx && calib);
    auto compiler = server::make_in_process_compiler();
    server::CompileInput in;
    in.device_class = "cortex-m4-256k";
    in.device_class_json = kM4;
    in.onnx = *onnx;
    in.calibration_npz = *calib;
    auto o = compiler->compile(in);
    EXPECT_TRUE(o);
    EXPECT_FALSE(o->refused) << o->refusal_reason;
    *outcome = *o;
    auto sha = db().transact([&](pqxx::work& w) {
      storage::device_classes::upsert(w, {"cortex-m4-256k", kM4});
      if (w.exec_params("SELECT 1 FROM models WHERE name = $1", model).empty()) {
        storage::models::create(w, model, "");
      }
      auto v = storage::models::create_version(
          w, {model, 0, storage::PgBlobStore::put(w, *onnx), {}, {}, {"cortex-m4-256k"}});
      storage::NewArtifact a;
      a.version_id = v.id;
      a.device_class = "cortex-m4-256k";
      a.artifact_sha256 = storage::PgBlobStore::put(w, o->artifact);
      a.report_json = o->report_json;
      a.outputs = o->outputs;
      storage::artifacts::store(w, a);
      return *a.artifact_sha256;
    });
    EXPECT_TRUE(sha) << sha.error().message;
    return *sha;
  }

  storage::Database& db() { return scratch_.db(); }

  // Release 5 of digits_cnn version 1 for the class, whole (no base).
  static server::OfferRequest release_of(const std::string& sha) {
    server::OfferRequest q;
    q.device_class = "cortex-m4-256k";
    q.target_sha256 = sha;
    q.model = "digits_cnn";
    q.model_version = 1;
    q.release_seq = 5;
    q.device_id = "dev-7";
    return q;
  }

  tinyfleet::testing::ScratchDatabase scratch_;
  std::filesystem::path keys_;
  update::TargetsKey key_;
};

const update::Manifest* manifest_of(const std::string& offer) {
  const auto* signed_offer = update::GetSignedOffer(offer.data());
  return signed_offer->manifest_nested_root();
}

TEST_F(OfferBuilderTest, SelfTestsAndBaselineComeFromTheStoredOutputs) {
  server::CompileOutcome compiled;
  const std::string sha = compile_and_store("digits_cnn", &compiled);
  storage::PgBlobStore blobs(db());
  server::OfferBuilder builder(db(), blobs, key_);
  const auto q = release_of(sha);
  auto built = builder.build(q, kNow);
  ASSERT_TRUE(built) << built.error().message;
  const auto* m = manifest_of(built->offer);
  ASSERT_NE(m, nullptr);
  ASSERT_NE(m->device_id(), nullptr);
  EXPECT_EQ(m->device_id()->str(), "dev-7");  // bound to its device
  EXPECT_EQ(m->kind(), update::OfferKind_Model);
  // The "no model" revert of the same device: signed, bound, nothing to download.
  auto none = builder.build_no_model(q, kNow);
  ASSERT_TRUE(none) << none.error().message;
  const auto* n = manifest_of(none->offer);
  EXPECT_EQ(n->kind(), update::OfferKind_NoModel);
  EXPECT_EQ(n->device_id()->str(), "dev-7");
  EXPECT_EQ(n->release_seq(), 5u);
  EXPECT_TRUE(none->payload.empty());
  ASSERT_NE(m->self_tests(), nullptr);
  ASSERT_EQ(m->self_tests()->size(), 2u);
  for (const auto* t : *m->self_tests()) {
    const std::string in(reinterpret_cast<const char*>(t->input()->data()), t->input()->size());
    const std::string out(reinterpret_cast<const char*>(t->expected_output()->data()),
                          t->expected_output()->size());
    EXPECT_EQ(out, run_artifact(compiled.artifact, in));
  }
  // Second input: (i*37+11)%256-128.
  const auto* ramp = m->self_tests()->Get(1)->input();
  for (size_t i = 0; i < ramp->size(); ++i) {
    ASSERT_EQ(ramp->Get(static_cast<flatbuffers::uoffset_t>(i)),
              static_cast<int>((i * 37 + 11) % 256) - 128);
  }
  ASSERT_NE(m->drift_baseline(), nullptr);
  const auto* d = m->drift_baseline();
  ASSERT_EQ(d->class_histogram()->size(), compiled.outputs.class_histogram.size());
  EXPECT_EQ(d->class_histogram()->Get(3), compiled.outputs.class_histogram[3]);
  EXPECT_EQ(d->mean_top1_confidence(), compiled.outputs.mean_top1_confidence);
  EXPECT_EQ(d->channel_std()->Get(0), compiled.outputs.channel_std[0]);
  EXPECT_GT(m->modelled_cycles(), 0u);
  EXPECT_EQ(m->modelled_cycles(), static_cast<uint64_t>(compiled.outputs.modelled_cycles));
}

// A class names the codecs its devices decode (the Cortex-M4 firmware: TensorRange only):
// the offer's payload is in one of them, also for a first model (no base: a delta from
// nothing instead of the zstd-compressed whole).
TEST_F(OfferBuilderTest, OffersOnlyACodecTheClassDecodes) {
  server::CompileOutcome compiled;
  const std::string sha = compile_and_store("digits_cnn", &compiled);
  storage::PgBlobStore blobs(db());
  const std::string m4(kM4);
  for (const std::string codec : {"TensorRange", "TensorLzma"}) {
    const std::string spec = m4.substr(0, m4.size() - 1) + R"(,"delta_codecs":[")" + codec + "\"]}";
    ASSERT_TRUE(db().transact([&](pqxx::work& w) {
      storage::device_classes::upsert(w, {"cortex-m4-256k", spec});
      return true;
    }));
    server::OfferBuilder builder(db(), blobs, key_);
    auto built = builder.build(release_of(sha), kNow);
    ASSERT_TRUE(built) << built.error().message;
    const auto* m = manifest_of(built->offer);
    EXPECT_EQ(update::EnumNameDeltaCodec(m->codec()), codec);
    ASSERT_NE(m->base_sha256(), nullptr);
    EXPECT_EQ(m->base_sha256()->size(), 32u);  // zeros: from nothing
  }
  // A class that decodes every codec gets the whole artifact, zstd-compressed.
  ASSERT_TRUE(db().transact([&](pqxx::work& w) {
    storage::device_classes::upsert(w, {"cortex-m4-256k", kM4});
    return true;
  }));
  server::OfferBuilder builder(db(), blobs, key_);
  auto built = builder.build(release_of(sha), kNow);
  ASSERT_TRUE(built) << built.error().message;
  EXPECT_EQ(manifest_of(built->offer)->codec(), update::DeltaCodec_Full);
}

// fleetd's offer builder signs through a PKCS#11 token (SoftHSM2) holding the targets key,
// carries the root chain listing it, and the device's check accepts the offer.
TEST_F(OfferBuilderTest, SignsOnAPkcs11TokenAndTheDeviceAcceptsIt) {
  const auto hsm = keys_.string() + "-hsm";
  std::filesystem::remove_all(hsm);
  ASSERT_TRUE(tinyfleet::testing::make_softhsm_token(hsm)) << "apt-get install softhsm2";
  const update::Pkcs11Config token{tinyfleet::testing::kSoftHsmModule,
                                   tinyfleet::testing::kSoftHsmToken,
                                   tinyfleet::testing::kSoftHsmPin, "fleetd-targets"};
  auto pk = update::pkcs11_generate_ed25519(token);
  ASSERT_TRUE(pk) << pk.error().message;
  ASSERT_TRUE(update::certify_targets_key(keys_.string(), keys_.string(), *pk, kNow, 30));
  auto signer = update::Pkcs11Signer::open(token);
  ASSERT_TRUE(signer) << signer.error().message;
  server::CompileOutcome compiled;
  const std::string sha = compile_and_store("digits_cnn", &compiled);
  storage::PgBlobStore blobs(db());
  server::OfferBuilder builder(db(), blobs,
                               update::load_targets_certificate(keys_.string()).value());
  builder.set_signer(std::move(*signer));
  builder.set_root_chain(update::load_root_chain(keys_.string()).value());
  auto built = builder.build(release_of(sha), kNow);
  ASSERT_TRUE(built) << built.error().message;

  const auto root_pk = update::load_root_public_key(keys_.string()).value();
  const auto* data = reinterpret_cast<const uint8_t*>(built->offer.data());
  update::SodiumVerifier verifier;
  update::TrustedRoot trusted;
  update::pin_root(reinterpret_cast<const uint8_t*>(root_pk.data()), &trusted);
  bool advanced = false;
  update::RootStatus why;
  ASSERT_EQ(
      update::apply_offer_root_chain(data, built->offer.size(), trusted, verifier, &advanced, &why),
      update::OfferStatus::kOk);
  EXPECT_EQ(trusted.version, 2u);  // init's v1, certify's v2 listing the token's key
  update::DeviceIdentity id{"default", "cortex-m4-256k",
                            0,         reinterpret_cast<const uint8_t*>(root_pk.data()),
                            "dev-7",   &trusted};
  EXPECT_EQ(update::check_offer(data, built->offer.size(), id, kNow, verifier).status,
            update::OfferStatus::kOk);
  std::filesystem::remove_all(hsm);
}

TEST_F(OfferBuilderTest, WithoutStoredOutputsOrAValidClassThereIsNoOffer) {
  server::CompileOutcome compiled;
  const std::string sha = compile_and_store("digits_mlp", &compiled);
  // The same artifact's row without outputs (as compiled before migration 0006).
  ASSERT_TRUE(db().transact([&](pqxx::work& w) {
    w.exec("DELETE FROM artifact_self_tests");
    w.exec("UPDATE artifacts SET modelled_cycles = NULL");
    return storage::Done{};
  }));
  storage::PgBlobStore blobs(db());
  server::OfferBuilder builder(db(), blobs, key_);
  server::OfferRequest q;
  q.device_class = "cortex-m4-256k";
  q.target_sha256 = sha;
  auto none = builder.build(q, kNow);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, storage::ErrorCode::kFailedPrecondition);
  EXPECT_NE(none.error().message.find("no stored compile outputs"), std::string::npos);

  // The class spec is read with optimizer_service's DeviceClass parser.
  server::CompileOutcome again;
  const std::string sha2 = compile_and_store("digits_mlp", &again);
  EXPECT_EQ(sha2, sha);  // one artifact: the newer row has outputs
  ASSERT_TRUE(db().transact([&](pqxx::work& w) {
    storage::device_classes::upsert(w, {"broken-1k", R"({"ram_bytes": 1024, "clock_hz": 1})"});
    return storage::Done{};
  }));
  q.device_class = "broken-1k";
  auto bad_class = builder.build(q, kNow);
  ASSERT_FALSE(bad_class);
  EXPECT_NE(bad_class.error().message.find("flash_bytes"), std::string::npos);
  q.device_class = "cortex-m4-256k";
  EXPECT_TRUE(builder.build(release_of(sha), kNow));
}

TEST_F(OfferBuilderTest, ABlobWhoseBytesNoLongerMatchItsSha256IsNeverSigned) {
  server::CompileOutcome compiled;
  const std::string sha = compile_and_store("digits_cnn", &compiled);
  // One byte of the stored artifact changes behind fleetd's back.
  ASSERT_TRUE(db().transact([&](pqxx::work& w) {
    w.exec_params(
        "UPDATE blobs SET data = set_byte(data, 99, (get_byte(data, 99) + 1) % 256) "
        "WHERE sha256 = $1",
        sha);
    return storage::Done{};
  }));
  storage::PgBlobStore blobs(db());
  server::OfferBuilder builder(db(), blobs, key_);
  auto built = builder.build(release_of(sha), kNow);
  ASSERT_FALSE(built) << "fleetd signed an offer for a corrupt blob";
  EXPECT_NE(built.error().message.find("corrupt"), std::string::npos) << built.error().message;
  EXPECT_NE(built.error().message.find(sha), std::string::npos);

  // Restored, the same builder signs it (the refusal was not cached).
  ASSERT_TRUE(db().transact([&](pqxx::work& w) {
    w.exec_params("UPDATE blobs SET data = $1 WHERE sha256 = $2",
                  pqxx::binarystring(compiled.artifact.data(), compiled.artifact.size()), sha);
    return storage::Done{};
  }));
  EXPECT_TRUE(builder.build(release_of(sha), kNow));
}

}  // namespace
