// Root metadata as TUF intends: devices walk the chain from the key they pinned, a
// threshold of root keys signs each version, targets keys are revoked by leaving them out,
// and one offer moves a device's release counter by at most the root's step. Real keys
// (fleetctl's functions), real signatures, the device's check.
#include <gtest/gtest.h>
#include <sodium.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "tinyfleet/testing/update_fixtures.h"
#include "tinyfleet/update/offer.h"
#include "tinyfleet/update/offer_signer.h"
#include "tinyfleet/update/root_keys.h"
#include "tinyfleet/update/root_metadata.h"
#include "tinyfleet/update/sodium_crypto.h"
#include "tinyfleet/update/update_keys.h"

using namespace tinyfleet;
using update::OfferStatus;
using update::RootStatus;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kNow = 1795305600;

const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

class RootMetadata : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    base_ = fs::temp_directory_path() /
            ("tf-root-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    root_dir_ = (base_ / "root").string();
    keys_dir_ = (base_ / "keys").string();
    ASSERT_TRUE(update::init_keys(root_dir_, keys_dir_, kNow, 30));
    pinned_ = update::load_root_public_key(root_dir_).value();
  }
  void TearDown() override { fs::remove_all(base_); }

  update::ManifestFields fields(uint64_t release) const {
    return tinyfleet::testing::placeholder_manifest(release, kNow);
  }
  // fleetd's offer: its targets key (from the folder) and the chain it finds there.
  std::string offer(uint64_t release, bool with_chain = true) const {
    auto key = update::load_targets_key(keys_dir_).value();
    update::SodiumSigner signer(key.secret_key);
    const std::string chain = with_chain ? update::load_root_chain(keys_dir_).value() : "";
    return update::sign_offer(fields(release), key, signer, chain).value();
  }
  // A device: walks the offer's chain from `trusted`, then checks the offer.
  OfferStatus device_check(update::TrustedRoot& trusted, const std::string& o,
                           uint64_t current = 3) const {
    bool advanced = false;
    RootStatus why;
    const auto s =
        update::apply_offer_root_chain(u8(o), o.size(), trusted, verifier_, &advanced, &why);
    if (s != OfferStatus::kOk) return s;
    update::DeviceIdentity id{"default", "cortex-m4-256k", current, u8(pinned_), "dev-1", &trusted};
    return update::check_offer(u8(o), o.size(), id, kNow, verifier_).status;
  }
  update::TrustedRoot pinned() const {
    update::TrustedRoot t;
    update::pin_root(u8(pinned_), &t);
    return t;
  }

  fs::path base_;
  std::string root_dir_, keys_dir_, pinned_;
  update::SodiumVerifier verifier_;
};

TEST_F(RootMetadata, InitListsTheTargetsKeyInVersionOne) {
  auto chain = update::load_root_chain(keys_dir_).value();
  auto v1 = update::parse_root_document(chain).value();
  EXPECT_EQ(v1.version, 1u);
  ASSERT_EQ(v1.keys.size(), 1u);
  EXPECT_EQ(v1.keys[0], pinned_);
  ASSERT_EQ(v1.targets_keys.size(), 1u);
  EXPECT_EQ(v1.targets_keys[0], update::load_targets_key(keys_dir_).value().public_key);
  auto t = pinned();
  EXPECT_EQ(device_check(t, offer(4)), OfferStatus::kOk);
  EXPECT_EQ(t.version, 1u);
  EXPECT_FALSE(t.any_targets_key);
}

// The root rotates to a new key: devices pinned to the old one walk v1 -> v2 and then
// trust only the new key; an offer whose certificate the old root signed is refused.
TEST_F(RootMetadata, DevicesWalkARootRotationAndDropTheOldRoot) {
  const auto old_cert_offer = offer(4);
  auto rotated = update::rotate_root(root_dir_, keys_dir_, 1, 1);
  ASSERT_TRUE(rotated) << rotated.error().message;
  EXPECT_EQ(rotated->version, 2u);
  EXPECT_NE(rotated->keys[0], pinned_);
  EXPECT_TRUE(fs::exists(base_ / "root" / "retired" / "v1-root.key"));
  EXPECT_EQ(update::load_root_public_key(keys_dir_).value(), rotated->keys[0]);

  auto t = pinned();
  EXPECT_EQ(device_check(t, offer(4)), OfferStatus::kOk);
  EXPECT_EQ(t.version, 2u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(t.keys[0]), 32), rotated->keys[0]);
  EXPECT_EQ(device_check(t, old_cert_offer), OfferStatus::kBadCertificate);
  // Without the chain a device still on the pinned key cannot take the new certificate.
  auto stale = pinned();
  EXPECT_EQ(device_check(stale, offer(4, false)), OfferStatus::kBadCertificate);
  // A device provisioned now pins the new key and starts at v2 (v1 is skipped).
  update::TrustedRoot fresh;
  update::pin_root(u8(rotated->keys[0]), &fresh);
  EXPECT_EQ(device_check(fresh, offer(4)), OfferStatus::kOk);
  EXPECT_EQ(fresh.version, 2u);
}

// Three root keys, two needed: a version one stolen root key signs alone is refused, and
// fleetctl refuses to sign with fewer than the threshold.
TEST_F(RootMetadata, AThresholdOfRootKeysIsNeeded) {
  auto v2 = update::rotate_root(root_dir_, keys_dir_, 3, 2);
  ASSERT_TRUE(v2) << v2.error().message;
  auto t = pinned();
  ASSERT_EQ(device_check(t, offer(4)), OfferStatus::kOk);
  ASSERT_EQ(t.version, 2u);
  ASSERT_EQ(t.threshold, 2u);

  std::string sk;
  {
    std::ifstream in(base_ / "root" / "root-2.key", std::ios::binary);
    sk.assign(std::istreambuf_iterator<char>(in), {});
  }
  update::SodiumSigner thief(sk);
  auto forged = *v2;
  forged.version = 3;
  forged.targets_keys = {std::string(32, 'X')};
  auto doc = update::sign_root(forged, {&thief}).value();
  update::RootView view;
  ASSERT_EQ(update::parse_root(u8(doc), doc.size(), &view), RootStatus::kOk);
  EXPECT_EQ(update::apply_root(t, view, verifier_), RootStatus::kNotSignedByOld);
  EXPECT_EQ(t.version, 2u);

  // Two of three present: fleetctl signs; one of three: it refuses.
  fs::remove(base_ / "root" / "root-3.key");
  EXPECT_TRUE(update::set_release_step(root_dir_, keys_dir_, 100));
  fs::remove(base_ / "root" / "root-2.key");
  auto refused = update::set_release_step(root_dir_, keys_dir_, 200);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("threshold is 2"), std::string::npos);
}

// A stolen targets key is contained: rotate to a new one, then leave the old one out.
TEST_F(RootMetadata, ARevokedTargetsKeyIsRefused) {
  const auto stolen = update::load_targets_key(keys_dir_).value();
  update::SodiumSigner thief(stolen.secret_key);
  ASSERT_TRUE(update::rotate_targets_key(root_dir_, keys_dir_, kNow, 30));
  auto revoked = update::revoke_targets_key(root_dir_, keys_dir_, stolen.public_key);
  ASSERT_TRUE(revoked) << revoked.error().message;
  EXPECT_EQ(revoked->version, 3u);
  EXPECT_EQ(revoked->targets_keys.size(), 1u);

  auto t = pinned();
  EXPECT_EQ(device_check(t, offer(4)), OfferStatus::kOk);  // the new key, chain v1..v3
  const auto bad = update::sign_offer(fields(5), stolen, thief, "").value();
  EXPECT_EQ(device_check(t, bad), OfferStatus::kTargetsKeyRevoked);
  // Revoking it again, or a key never listed, is an error.
  EXPECT_FALSE(update::revoke_targets_key(root_dir_, keys_dir_, stolen.public_key));
}

// A stolen key cannot push a device's counter to 2^64-1: one offer moves it by at most
// 2^20 by default, or the root's step.
TEST_F(RootMetadata, OneOfferMovesTheReleaseCounterByAtMostTheRootsStep) {
  auto t = pinned();
  EXPECT_EQ(device_check(t, offer(~uint64_t{0})), OfferStatus::kReleaseStepTooLarge);
  EXPECT_EQ(device_check(t, offer(3 + update::kDefaultMaxReleaseStep)), OfferStatus::kOk);
  EXPECT_EQ(device_check(t, offer(4 + update::kDefaultMaxReleaseStep)),
            OfferStatus::kReleaseStepTooLarge);
  ASSERT_TRUE(update::set_release_step(root_dir_, keys_dir_, 5));
  EXPECT_EQ(device_check(t, offer(8)), OfferStatus::kOk);
  EXPECT_EQ(t.max_release_step, 5u);
  EXPECT_EQ(device_check(t, offer(9)), OfferStatus::kReleaseStepTooLarge);
  // Without a trusted root the default applies too.
  const auto o = offer(~uint64_t{0}, false);
  update::DeviceIdentity id{"default", "cortex-m4-256k", 3, u8(pinned_), "dev-1"};
  EXPECT_EQ(update::check_offer(u8(o), o.size(), id, kNow, verifier_).status,
            OfferStatus::kReleaseStepTooLarge);
}

TEST_F(RootMetadata, ATamperedOrGappedChainIsRejected) {
  ASSERT_TRUE(update::set_release_step(root_dir_, keys_dir_, 50));  // v2
  ASSERT_TRUE(update::set_release_step(root_dir_, keys_dir_, 60));  // v3
  const auto chain = update::load_root_chain(keys_dir_).value();
  update::RootView v1, v2;
  ASSERT_EQ(update::parse_root(u8(chain), chain.size(), &v1), RootStatus::kOk);
  ASSERT_EQ(update::parse_root(u8(chain) + v1.size, chain.size() - v1.size, &v2), RootStatus::kOk);
  bool advanced = false;
  // v1 then v3: a version missing.
  const std::string gapped = chain.substr(0, v1.size) + chain.substr(v1.size + v2.size);
  auto t = pinned();
  EXPECT_EQ(update::apply_root_chain(t, u8(gapped), gapped.size(), verifier_, &advanced),
            RootStatus::kNotNext);
  EXPECT_TRUE(advanced);  // v1 stays applied
  EXPECT_EQ(t.version, 1u);
  // v2 with its step changed after signing.
  std::string tampered = chain;
  tampered[v1.size + 13] ^= 1;
  auto t2 = pinned();
  EXPECT_EQ(update::apply_root_chain(t2, u8(tampered), tampered.size(), verifier_, &advanced),
            RootStatus::kNotSignedByOld);
  EXPECT_EQ(t2.version, 1u);
  // Truncated: malformed, never read past the end.
  auto t3 = pinned();
  EXPECT_EQ(update::apply_root_chain(t3, u8(chain), chain.size() - 1, verifier_, &advanced),
            RootStatus::kMalformed);
  EXPECT_EQ(t3.version, 2u);
}

}  // namespace
