// Signed offers: what the server signs, the device accepts; every kind of tampering
// is refused with its reason.
#include <gtest/gtest.h>
#include <sodium.h>

#include <filesystem>

#include "tinyfleet/update/offer.h"
#include "tinyfleet/update/offer_signer.h"
#include "tinyfleet/update/sodium_crypto.h"
#include "tinyfleet/update/update_keys.h"

using namespace tinyfleet;
using update::OfferStatus;

namespace {

constexpr uint64_t kNow = 1795305600;  // 2026-11-22

class Offers : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    dir_ = std::filesystem::temp_directory_path() /
           ("tf-keys-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto k = update::init_keys(dir_.string(), kNow, 30);
    ASSERT_TRUE(k) << k.error().message;
    key_ = *k;
    root_pk_ = update::load_root_public_key(dir_.string()).value();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  update::ManifestFields fields() const {
    update::ManifestFields f;
    f.fleet = "default";
    f.device_class = "cortex-m4-256k";
    f.model = "digits";
    f.model_version = 2;
    f.release_seq = 7;
    f.target_sha256 = std::string(32, 'T');
    f.target_size = 9000;
    f.base_sha256 = std::string(32, 'B');
    f.codec = update::DeltaCodec_TensorZstd;
    f.payload_sha256 = std::string(32, 'P');
    f.payload_size = 1200;
    f.expires_at = kNow + 3600;
    f.self_tests = {{std::string(64, '\x01'), std::string(10, '\x02')}};
    f.class_histogram = std::vector<float>(10, 0.1f);
    f.mean_top1_confidence = 0.93f;
    f.device_id = "dev-a";
    return f;
  }

  OfferStatus check(const std::string& offer, uint64_t current_release = 3,
                    const char* cls = "cortex-m4-256k", uint64_t now = kNow,
                    const char* device = "dev-a") const {
    update::DeviceIdentity id{"default", cls, current_release,
                              reinterpret_cast<const uint8_t*>(root_pk_.data()), device};
    return update::check_offer(reinterpret_cast<const uint8_t*>(offer.data()), offer.size(), id,
                               now, verifier_)
        .status;
  }

  std::filesystem::path dir_;
  update::TargetsKey key_;
  std::string root_pk_;
  update::SodiumVerifier verifier_;
};

TEST_F(Offers, AValidOfferIsAcceptedAndReadInPlace) {
  const auto offer = update::sign_offer(fields(), key_);
  update::DeviceIdentity id{"default", "cortex-m4-256k", 3,
                            reinterpret_cast<const uint8_t*>(root_pk_.data()), "dev-a"};
  auto checked = update::check_offer(reinterpret_cast<const uint8_t*>(offer.data()), offer.size(),
                                     id, kNow, verifier_);
  ASSERT_EQ(checked.status, OfferStatus::kOk);
  const auto* m = checked.manifest;
  EXPECT_EQ(m->release_seq(), 7u);
  EXPECT_EQ(m->codec(), update::DeltaCodec_TensorZstd);
  EXPECT_EQ(m->target_size(), 9000u);
  ASSERT_EQ(m->self_tests()->size(), 1u);
  EXPECT_EQ(m->self_tests()->Get(0)->input()->size(), 64u);
  EXPECT_FLOAT_EQ(m->drift_baseline()->mean_top1_confidence(), 0.93f);
}

// The signed parts as the device reads them; equal means "acts the same".
std::string meaning(const std::string& offer) {
  const auto* o = update::GetSignedOffer(offer.data());
  auto str = [](const flatbuffers::Vector<uint8_t>* v) {
    return std::string(reinterpret_cast<const char*>(v->data()), v->size());
  };
  return str(o->manifest()) + "|" + str(o->signature()) + "|" +
         str(o->certificate()->public_key()) + "|" +
         std::to_string(o->certificate()->expires_at()) + "|" +
         str(o->certificate()->root_signature());
}

TEST_F(Offers, EveryFlippedByteIsRefusedOrMeaningless) {
  const auto offer = update::sign_offer(fields(), key_);
  // Each byte of the offer (manifest, certificate, signature, structure) flipped in turn.
  // FlatBuffers leaves alignment padding outside the signed manifest; a flip there may
  // pass, but then what the device reads must be exactly what was signed.
  int refused = 0;
  for (size_t i = 0; i < offer.size(); ++i) {
    std::string bad = offer;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    if (check(bad) != OfferStatus::kOk) {
      ++refused;
      continue;
    }
    EXPECT_EQ(meaning(bad), meaning(offer)) << "byte " << i << " changed an accepted offer";
  }
  EXPECT_GT(refused, static_cast<int>(offer.size()) * 9 / 10);
}

TEST_F(Offers, EachRuleNamesItsReason) {
  auto f = fields();
  EXPECT_EQ(check(update::sign_offer(f, key_), 3, "cortex-m7-512k"), OfferStatus::kWrongClass);
  EXPECT_EQ(check(update::sign_offer(f, key_), 7), OfferStatus::kNotNewer);  // same release
  EXPECT_EQ(check(update::sign_offer(f, key_), 9), OfferStatus::kNotNewer);  // older release
  f.expires_at = kNow - 1;
  EXPECT_EQ(check(update::sign_offer(f, key_)), OfferStatus::kExpired);
  f = fields();
  f.fleet = "other";
  EXPECT_EQ(check(update::sign_offer(f, key_)), OfferStatus::kWrongFleet);
  // Bound to one device: an offer captured from device A is refused by device B, and one
  // naming no device (from before the field) by every device.
  EXPECT_EQ(check(update::sign_offer(fields(), key_), 3, "cortex-m4-256k", kNow, "dev-b"),
            OfferStatus::kWrongDevice);
  f = fields();
  f.device_id = "";
  EXPECT_EQ(check(update::sign_offer(f, key_)), OfferStatus::kWrongDevice);
  EXPECT_EQ(check(update::sign_offer(fields(), key_), 3, "cortex-m4-256k", kNow, ""),
            OfferStatus::kWrongDevice);
  // The targets key's certificate runs out after 30 days.
  EXPECT_EQ(check(update::sign_offer(fields(), key_), 3, "cortex-m4-256k", kNow + 31 * 86400),
            OfferStatus::kCertificateExpired);
  EXPECT_EQ(check(std::string(100, '\0')), OfferStatus::kMalformed);
  EXPECT_EQ(check(update::sign_offer(fields(), key_).substr(0, 150)), OfferStatus::kMalformed);
  EXPECT_EQ(check(std::string(update::kMaxOfferBytes + 1, 'x')), OfferStatus::kTooLarge);
  EXPECT_STREQ(update::to_string(OfferStatus::kNotNewer),
               "release not newer than the installed one");
}

TEST_F(Offers, AKeyFromAnotherRootIsUnknown) {
  const auto other = dir_.string() + "-other";
  std::filesystem::remove_all(other);
  auto foreign = update::init_keys(other, kNow, 30);
  ASSERT_TRUE(foreign);
  EXPECT_EQ(check(update::sign_offer(fields(), *foreign)), OfferStatus::kBadCertificate);
  // A signature by a key whose certificate belongs to another key.
  auto mixed = key_;
  mixed.secret_key = foreign->secret_key;
  EXPECT_EQ(check(update::sign_offer(fields(), mixed)), OfferStatus::kBadSignature);
  std::filesystem::remove_all(other);
}

TEST_F(Offers, RotationStrandsNoDevice) {
  const auto before = update::sign_offer(fields(), key_);
  auto rotated = update::rotate_targets_key(dir_.string(), kNow + 86400, 30);
  ASSERT_TRUE(rotated) << rotated.error().message;
  EXPECT_NE(rotated->public_key, key_.public_key);
  // Devices pin only the root: offers under the new key verify, and the old
  // (still certified) offer keeps verifying until its certificate runs out.
  auto f = fields();
  f.release_seq = 8;
  EXPECT_EQ(check(update::sign_offer(f, *rotated)), OfferStatus::kOk);
  EXPECT_EQ(check(before), OfferStatus::kOk);
  auto loaded = update::load_targets_key(dir_.string());
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->public_key, rotated->public_key);
  EXPECT_FALSE(update::init_keys(dir_.string(), kNow, 30)) << "init must not replace a root key";
}

// A "no model" offer (a rollout's revert of a device that had none) carries no target or
// payload; everything else (signature, fleet, class, device, release, expiry) applies.
TEST_F(Offers, ANoModelOfferNeedsNoPayloadButIsCheckedOtherwise) {
  update::ManifestFields f;
  f.fleet = "default";
  f.device_class = "cortex-m4-256k";
  f.device_id = "dev-a";
  f.release_seq = 8;
  f.expires_at = kNow + 3600;
  f.kind = update::OfferKind_NoModel;
  EXPECT_EQ(check(update::sign_offer(f, key_)), OfferStatus::kOk);
  EXPECT_EQ(check(update::sign_offer(f, key_), 8), OfferStatus::kNotNewer);
  EXPECT_EQ(check(update::sign_offer(f, key_), 3, "cortex-m4-256k", kNow, "dev-b"),
            OfferStatus::kWrongDevice);
  f.kind = update::OfferKind_Model;  // the same fields as a model offer: malformed
  EXPECT_EQ(check(update::sign_offer(f, key_)), OfferStatus::kMalformed);
}

}  // namespace
