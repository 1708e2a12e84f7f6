#include "tinyfleet/server/broker_password.h"

#include <crypt.h>

#include <cstdint>
#include <cstring>
#include <memory>

#include <sodium.h>

namespace tinyfleet::server {

namespace {
std::string base64(const std::string& raw) {
  std::string out(sodium_base64_ENCODED_LEN(raw.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                    raw.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

using Block = unsigned char[crypto_auth_hmacsha512_BYTES];

void hmac(const std::string& key, const unsigned char* msg, size_t len, const unsigned char* tail,
          size_t tail_len, Block out) {
  crypto_auth_hmacsha512_state st;
  crypto_auth_hmacsha512_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha512_update(&st, msg, len);
  if (tail_len) crypto_auth_hmacsha512_update(&st, tail, tail_len);
  crypto_auth_hmacsha512_final(&st, out);
}
}  // namespace

std::string pbkdf2_sha512(const std::string& password, const std::string& salt, int iterations) {
  // dkLen = hLen: T1 = U1 ^ ... ^ Uc, U1 = HMAC(P, S || INT(1)), Ui = HMAC(P, Ui-1).
  const unsigned char block_index[4] = {0, 0, 0, 1};
  Block u, t;
  hmac(password, reinterpret_cast<const unsigned char*>(salt.data()), salt.size(), block_index, 4,
       u);
  std::memcpy(t, u, sizeof t);
  for (int i = 1; i < iterations; ++i) {
    Block next;
    hmac(password, u, sizeof u, nullptr, 0, next);
    std::memcpy(u, next, sizeof u);
    for (size_t k = 0; k < sizeof t; ++k) t[k] ^= u[k];
  }
  std::string out(reinterpret_cast<const char*>(t), sizeof t);
  sodium_memzero(u, sizeof u);
  sodium_memzero(t, sizeof t);
  return out;
}

std::string mosquitto_password_hash(const std::string& password, const std::string& salt,
                                    int iterations) {
  return "$7$" + std::to_string(iterations) + "$" + base64(salt) + "$" +
         base64(pbkdf2_sha512(password, salt, iterations));
}

std::string mosquitto_password_hash(const std::string& password) {
  std::string salt(12, '\0');
  randombytes_buf(salt.data(), salt.size());
  return mosquitto_password_hash(password, salt, kMosquittoIterations);
}

std::string nats_password_hash(const std::string& password, int cost) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  // No random bytes given: libxcrypt takes them from the kernel (getrandom).
  if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), nullptr, 0, setting,
                       sizeof setting) == nullptr) {
    return "";
  }
  auto data = std::make_unique<crypt_data>();  // 32 KiB: not on the stack
  std::memset(data.get(), 0, sizeof *data);
  const char* hash = crypt_rn(password.c_str(), setting, data.get(), sizeof *data);
  std::string out = hash != nullptr && hash[0] != '*' ? hash : "";
  sodium_memzero(data.get(), sizeof *data);
  return out;
}

bool bcrypt_matches(const std::string& password, const std::string& hash) {
  if (hash.rfind("$2", 0) != 0) return false;
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof *data);
  const char* again = crypt_rn(password.c_str(), hash.c_str(), data.get(), sizeof *data);
  const bool same = again != nullptr && again[0] != '*' && hash == again;
  sodium_memzero(data.get(), sizeof *data);
  return same;
}

}  // namespace tinyfleet::server
