#include "tinyfleet/update/update_keys.h"

#include <sodium.h>

#include <filesystem>

#include "key_files.h"
#include "tinyfleet/update/offer.h"
#include "tinyfleet/update/root_keys.h"

namespace tinyfleet::update {

namespace {
namespace fs = std::filesystem;
using storage::Error;
using storage::ErrorCode;

using key_files::read_exact;
using key_files::write_file;

// The root's certificate for `k.public_key` until `k.expires_at`.
void certify(TargetsKey& k, const std::string& root_secret) {
  uint8_t message[kCertificateMessageSize];
  certificate_message(reinterpret_cast<const uint8_t*>(k.public_key.data()), k.expires_at, message);
  k.root_signature.resize(crypto_sign_BYTES);
  crypto_sign_detached(reinterpret_cast<unsigned char*>(k.root_signature.data()), nullptr, message,
                       sizeof message, reinterpret_cast<const unsigned char*>(root_secret.data()));
}

storage::Expected<TargetsKey> make_targets_key(const std::string& root_secret, uint64_t now_unix,
                                               uint32_t days) {
  if (days == 0) return Error{ErrorCode::kInvalidArgument, "targets key validity must be > 0 days"};
  TargetsKey k;
  k.public_key.resize(crypto_sign_PUBLICKEYBYTES);
  k.secret_key.resize(crypto_sign_SECRETKEYBYTES);
  crypto_sign_keypair(reinterpret_cast<unsigned char*>(k.public_key.data()),
                      reinterpret_cast<unsigned char*>(k.secret_key.data()));
  k.expires_at = now_unix + uint64_t{days} * 86400;
  certify(k, root_secret);
  return k;
}

std::string certificate_bytes(const TargetsKey& k) {
  std::string out = k.public_key;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(k.expires_at >> (8 * i)));
  return out + k.root_signature;
}

storage::Expected<storage::Done> save_targets(const fs::path& dir, const TargetsKey& k) {
  if (auto w = write_file(dir / "targets.key", k.secret_key, true); !w) return w.error();
  return write_file(dir / "targets.cert", certificate_bytes(k), false);
}

// Keeps the current key and certificate as <name>.<expiry> for the record.
void keep_previous(const fs::path& dir, const storage::Expected<TargetsKey>& old) {
  if (!old) return;
  const auto suffix = "." + std::to_string(old->expires_at);
  std::error_code ec;
  for (const char* name : {"targets.key", "targets.cert"}) {
    if (!fs::exists(dir / name)) continue;
    fs::copy_file(dir / name, dir / (name + suffix), fs::copy_options::overwrite_existing, ec);
  }
}
}  // namespace

storage::Expected<TargetsKey> init_keys(const std::string& root_dir, const std::string& targets_dir,
                                        uint64_t now_unix, uint32_t targets_days) {
  if (sodium_init() < 0) return Error{ErrorCode::kInternal, "libsodium failed to initialize"};
  std::error_code ec;
  fs::create_directories(root_dir, ec);
  fs::create_directories(targets_dir, ec);
  if (fs::exists(fs::path(root_dir) / "root.key")) {
    return Error{ErrorCode::kAlreadyExists,
                 root_dir + "/root.key exists; refusing to replace a root key"};
  }
  std::string pk(crypto_sign_PUBLICKEYBYTES, '\0'), sk(crypto_sign_SECRETKEYBYTES, '\0');
  crypto_sign_keypair(reinterpret_cast<unsigned char*>(pk.data()),
                      reinterpret_cast<unsigned char*>(sk.data()));
  if (auto w = write_file(fs::path(root_dir) / "root.key", sk, true); !w) return w.error();
  if (auto w = write_file(fs::path(root_dir) / "root.pub", pk, false); !w) return w.error();
  if (auto w = write_file(fs::path(targets_dir) / "root.pub", pk, false); !w) return w.error();
  auto targets = make_targets_key(sk, now_unix, targets_days);
  if (!targets) return targets;
  if (auto w = save_targets(targets_dir, *targets); !w) return w.error();
  if (auto m = list_targets_key(root_dir, targets_dir, targets->public_key); !m) return m.error();
  return targets;
}

storage::Expected<TargetsKey> init_keys(const std::string& dir, uint64_t now_unix,
                                        uint32_t targets_days) {
  return init_keys(dir, dir, now_unix, targets_days);
}

storage::Expected<TargetsKey> rotate_targets_key(const std::string& root_dir,
                                                 const std::string& targets_dir, uint64_t now_unix,
                                                 uint32_t targets_days) {
  if (sodium_init() < 0) return Error{ErrorCode::kInternal, "libsodium failed to initialize"};
  auto root = read_exact(fs::path(root_dir) / "root.key", crypto_sign_SECRETKEYBYTES);
  if (!root) return root.error();
  auto targets = make_targets_key(*root, now_unix, targets_days);
  if (!targets) return targets;
  const fs::path dir(targets_dir);
  keep_previous(dir, load_targets_certificate(targets_dir));
  if (auto w = save_targets(dir, *targets); !w) return w.error();
  if (auto m = list_targets_key(root_dir, targets_dir, targets->public_key); !m) return m.error();
  return targets;
}

storage::Expected<TargetsKey> certify_targets_key(const std::string& root_dir,
                                                  const std::string& targets_dir,
                                                  const std::string& public_key, uint64_t now_unix,
                                                  uint32_t targets_days) {
  if (sodium_init() < 0) return Error{ErrorCode::kInternal, "libsodium failed to initialize"};
  if (public_key.size() != crypto_sign_PUBLICKEYBYTES || targets_days == 0) {
    return Error{ErrorCode::kInvalidArgument, "a targets public key is 32 bytes, valid > 0 days"};
  }
  auto root = read_exact(fs::path(root_dir) / "root.key", crypto_sign_SECRETKEYBYTES);
  if (!root) return root.error();
  TargetsKey k;
  k.public_key = public_key;
  k.expires_at = now_unix + uint64_t{targets_days} * 86400;
  certify(k, *root);
  const fs::path dir(targets_dir);
  keep_previous(dir, load_targets_certificate(targets_dir));
  std::error_code ec;
  fs::remove(dir / "targets.key", ec);  // the secret is on the token now
  if (auto w = write_file(dir / "targets.cert", certificate_bytes(k), false); !w) return w.error();
  if (auto m = list_targets_key(root_dir, targets_dir, public_key); !m) return m.error();
  return k;
}

storage::Expected<TargetsKey> recertify_targets_key(const std::string& root_dir,
                                                    const std::string& targets_dir) {
  auto root = read_exact(fs::path(root_dir) / "root.key", crypto_sign_SECRETKEYBYTES);
  if (!root) return root.error();
  auto k = load_targets_certificate(targets_dir);
  if (!k) return k;
  certify(*k, *root);
  if (auto w = write_file(fs::path(targets_dir) / "targets.cert", certificate_bytes(*k), false);
      !w) {
    return w.error();
  }
  return k;
}

storage::Expected<TargetsKey> rotate_targets_key(const std::string& dir, uint64_t now_unix,
                                                 uint32_t targets_days) {
  return rotate_targets_key(dir, dir, now_unix, targets_days);
}

storage::Expected<TargetsKey> load_targets_certificate(const std::string& dir) {
  auto cert = read_exact(fs::path(dir) / "targets.cert", 32 + 8 + 64);
  if (!cert) return cert.error();
  TargetsKey k;
  k.public_key = cert->substr(0, 32);
  for (int i = 7; i >= 0; --i)
    k.expires_at = (k.expires_at << 8) | static_cast<uint8_t>((*cert)[32 + i]);
  k.root_signature = cert->substr(40, 64);
  return k;
}

storage::Expected<TargetsKey> load_targets_key(const std::string& dir) {
  auto sk = read_exact(fs::path(dir) / "targets.key", crypto_sign_SECRETKEYBYTES);
  if (!sk) return sk.error();
  auto k = load_targets_certificate(dir);
  if (!k) return k;
  k->secret_key = *sk;
  // The secret key's second half is its public key: the pair must match.
  if (k->secret_key.substr(32) != k->public_key) {
    return Error{ErrorCode::kInvalidArgument, dir + "/targets.cert does not certify targets.key"};
  }
  return k;
}

storage::Expected<std::string> load_root_public_key(const std::string& dir) {
  return read_exact(fs::path(dir) / "root.pub", crypto_sign_PUBLICKEYBYTES);
}

}  // namespace tinyfleet::update
