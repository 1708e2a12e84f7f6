#include "tinyfleet/update/update_keys.h"

#include <sodium.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "tinyfleet/update/offer.h"

namespace tinyfleet::update {

namespace {
namespace fs = std::filesystem;
using storage::Error;
using storage::ErrorCode;

storage::Expected<std::string> read_exact(const fs::path& p, size_t size) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Error{ErrorCode::kNotFound, "cannot read " + p.string()};
  std::string bytes(std::istreambuf_iterator<char>(in), {});
  if (bytes.size() != size) {
    return Error{ErrorCode::kInvalidArgument, p.string() + " holds " +
                                                  std::to_string(bytes.size()) + " bytes, not " +
                                                  std::to_string(size)};
  }
  return bytes;
}

// Write-then-rename, so a crash never leaves half a key.
storage::Expected<storage::Done> write_file(const fs::path& p, const std::string& bytes,
                                            bool secret) {
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Error{ErrorCode::kUnavailable, "cannot write " + tmp.string()};
    if (secret) {
      fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write);
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) return Error{ErrorCode::kUnavailable, "cannot write " + tmp.string()};
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec) return Error{ErrorCode::kUnavailable, "cannot rename to " + p.string()};
  return storage::Done{};
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
  uint8_t message[kCertificateMessageSize];
  certificate_message(reinterpret_cast<const uint8_t*>(k.public_key.data()), k.expires_at, message);
  k.root_signature.resize(crypto_sign_BYTES);
  crypto_sign_detached(reinterpret_cast<unsigned char*>(k.root_signature.data()), nullptr, message,
                       sizeof message, reinterpret_cast<const unsigned char*>(root_secret.data()));
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
  auto old = load_targets_key(targets_dir);
  auto targets = make_targets_key(*root, now_unix, targets_days);
  if (!targets) return targets;
  const fs::path dir(targets_dir);
  if (old) {
    const auto suffix = "." + std::to_string(old->expires_at);
    std::error_code ec;
    fs::copy_file(dir / "targets.key", dir / ("targets.key" + suffix),
                  fs::copy_options::overwrite_existing, ec);
    fs::copy_file(dir / "targets.cert", dir / ("targets.cert" + suffix),
                  fs::copy_options::overwrite_existing, ec);
  }
  if (auto w = save_targets(dir, *targets); !w) return w.error();
  return targets;
}

storage::Expected<TargetsKey> rotate_targets_key(const std::string& dir, uint64_t now_unix,
                                                 uint32_t targets_days) {
  return rotate_targets_key(dir, dir, now_unix, targets_days);
}

storage::Expected<TargetsKey> load_targets_key(const std::string& dir) {
  auto sk = read_exact(fs::path(dir) / "targets.key", crypto_sign_SECRETKEYBYTES);
  if (!sk) return sk.error();
  auto cert = read_exact(fs::path(dir) / "targets.cert", 32 + 8 + 64);
  if (!cert) return cert.error();
  TargetsKey k;
  k.secret_key = *sk;
  k.public_key = cert->substr(0, 32);
  for (int i = 7; i >= 0; --i)
    k.expires_at = (k.expires_at << 8) | static_cast<uint8_t>((*cert)[32 + i]);
  k.root_signature = cert->substr(40, 64);
  // The secret key's second half is its public key: the pair must match.
  if (k.secret_key.substr(32) != k.public_key) {
    return Error{ErrorCode::kInvalidArgument, dir + "/targets.cert does not certify targets.key"};
  }
  return k;
}

storage::Expected<std::string> load_root_public_key(const std::string& dir) {
  return read_exact(fs::path(dir) / "root.pub", crypto_sign_PUBLICKEYBYTES);
}

}  // namespace tinyfleet::update
