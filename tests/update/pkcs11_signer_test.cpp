// The targets key on a PKCS#11 token (SoftHSM2, a software token Debian ships): the test
// makes a token in a temporary folder (SOFTHSM2_CONF), generates an Ed25519 key on it,
// the root certifies it, offers are signed through the token with CKM_EDDSA, and the
// device's check accepts them. Wrong PINs, labels and modules are refused with reasons.
#include <gtest/gtest.h>
#include <sodium.h>

#include <filesystem>
#include <fstream>

#include "tinyfleet/testing/softhsm_token.h"
#include "tinyfleet/testing/update_fixtures.h"
#include "tinyfleet/update/offer.h"
#include "tinyfleet/update/offer_signer.h"
#include "tinyfleet/update/pkcs11_signer.h"
#include "tinyfleet/update/root_keys.h"
#include "tinyfleet/update/sodium_crypto.h"
#include "tinyfleet/update/update_keys.h"

using namespace tinyfleet;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kNow = 1795305600;

const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

class Pkcs11Signing : public ::testing::Test {
 protected:
  // One token for the process: the module reads SOFTHSM2_CONF once, at C_Initialize.
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("tf-pkcs11-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    ready_ = tinyfleet::testing::make_softhsm_token(dir_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    ASSERT_TRUE(ready_) << "no SoftHSM2 token: apt-get install softhsm2 (install-deps.sh)";
  }

  static update::Pkcs11Config config(const std::string& label) {
    return {tinyfleet::testing::kSoftHsmModule, tinyfleet::testing::kSoftHsmToken,
            tinyfleet::testing::kSoftHsmPin, label};
  }
  static update::ManifestFields fields() {
    return tinyfleet::testing::placeholder_manifest(4, kNow);
  }

  static fs::path dir_;
  static bool ready_;
};
fs::path Pkcs11Signing::dir_;
bool Pkcs11Signing::ready_ = false;

TEST_F(Pkcs11Signing, OffersSignedOnTheTokenAreAcceptedByTheDevice) {
  auto pk = update::pkcs11_generate_ed25519(config("targets"));
  ASSERT_TRUE(pk) << pk.error().message;
  ASSERT_EQ(pk->size(), 32u);
  const std::string root_dir = (dir_ / "root").string(), keys_dir = (dir_ / "keys").string();
  ASSERT_TRUE(update::init_keys(root_dir, keys_dir, kNow, 30));
  auto cert = update::certify_targets_key(root_dir, keys_dir, *pk, kNow, 30);
  ASSERT_TRUE(cert) << cert.error().message;
  EXPECT_FALSE(fs::exists(fs::path(keys_dir) / "targets.key"));  // the secret is on the token

  auto signer = update::Pkcs11Signer::open(config("targets"));
  ASSERT_TRUE(signer) << signer.error().message;
  EXPECT_EQ((*signer)->public_key(), *pk);
  // fleetd's loading: the certificate from the folder, the chain that lists the key.
  const auto loaded = update::load_targets_certificate(keys_dir).value();
  const auto chain = update::load_root_chain(keys_dir).value();
  auto offer = update::sign_offer(fields(), loaded, **signer, chain);
  ASSERT_TRUE(offer) << offer.error().message;

  update::SodiumVerifier verifier;
  const auto root_pk = update::load_root_public_key(root_dir).value();
  update::TrustedRoot trusted;
  update::pin_root(u8(root_pk), &trusted);
  bool advanced = false;
  update::RootStatus why;
  ASSERT_EQ(
      update::apply_offer_root_chain(u8(*offer), offer->size(), trusted, verifier, &advanced, &why),
      update::OfferStatus::kOk);
  EXPECT_EQ(trusted.version, 2u);  // v1 (init), v2 listing the token's key
  update::DeviceIdentity id{"default", "cortex-m4-256k", 3, u8(root_pk), "dev-1", &trusted};
  EXPECT_EQ(update::check_offer(u8(*offer), offer->size(), id, kNow, verifier).status,
            update::OfferStatus::kOk);
  // The token signs what it is given: Ed25519 as libsodium verifies it.
  auto sig = (*signer)->sign("hello");
  ASSERT_TRUE(sig);
  EXPECT_EQ(crypto_sign_verify_detached(u8(*sig), u8(std::string("hello")), 5, u8(*pk)), 0);
  // A signer whose key is not the certified one is refused before signing.
  auto other = update::load_targets_certificate(keys_dir).value();
  other.public_key = std::string(32, 'x');
  EXPECT_FALSE(update::sign_offer(fields(), other, **signer, chain));
}

TEST_F(Pkcs11Signing, WrongPinLabelOrModuleIsRefusedWithAReason) {
  auto bad_pin = config("targets");
  bad_pin.pin = "0000";
  auto s = update::Pkcs11Signer::open(bad_pin);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("C_Login"), std::string::npos) << s.error().message;
  s = update::Pkcs11Signer::open(config("no-such-key"));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("labelled 'no-such-key'"), std::string::npos);
  auto bad_token = config("targets");
  bad_token.token_label = "elsewhere";
  s = update::Pkcs11Signer::open(bad_token);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("no PKCS#11 token labelled 'elsewhere'"), std::string::npos);
  auto bad_module = config("targets");
  bad_module.module = "/nonexistent/libpkcs11.so";
  s = update::Pkcs11Signer::open(bad_module);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("cannot load the PKCS#11 module"), std::string::npos);
}

}  // namespace
