#pragma once

#include <string>

namespace tinyfleet::server {

// Mosquitto 2.0's password file entries, made in-process so no password appears on a
// command line: "user:$7$<iterations>$<salt base64>$<hash base64>" where the hash is
// PBKDF2-HMAC-SHA512 (64 bytes) of the password over the salt (12 random bytes), both
// in standard padded base64, and mosquitto_passwd's default of 101 iterations.
constexpr int kMosquittoIterations = 101;

// PBKDF2-HMAC-SHA512 with a 64-byte output (one block).
std::string pbkdf2_sha512(const std::string& password, const std::string& salt, int iterations);
// "$7$101$<salt>$<hash>" for this password with a fresh random salt.
std::string mosquitto_password_hash(const std::string& password);
// The same with a given salt and iteration count (for checking against mosquitto_passwd).
std::string mosquitto_password_hash(const std::string& password, const std::string& salt,
                                    int iterations);

}  // namespace tinyfleet::server
