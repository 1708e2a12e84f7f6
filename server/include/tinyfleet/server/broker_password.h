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

// nats-server's password entries (broker.kind nats, nats_accounts.h): bcrypt, which
// nats-server checks for a password starting "$2a$"/"$2b$" (Go's x/crypto/bcrypt; cost 4
// at least), made with libxcrypt. The cost is low on purpose: device passwords are 24
// random characters (144 bits), out of reach of any guessing whatever the cost, while
// nats-server pays the cost on every MQTT CONNECT and, at each reload (SIGHUP), for every
// connected client it re-checks (docs/scale.md, "Device accounts on NATS", has figures).
constexpr int kNatsBcryptCost = 4;
// "$2b$<cost>$<salt><hash>" (60 characters) with a fresh random salt; "" if libxcrypt
// failed (no randomness, a cost out of 4..31).
std::string nats_password_hash(const std::string& password, int cost = kNatsBcryptCost);
// True if `hash` (a bcrypt hash) is this password's: bcrypt of the password with the hash
// as its setting gives the hash back.
bool bcrypt_matches(const std::string& password, const std::string& hash);

}  // namespace tinyfleet::server
