// fleetctl keys: the fleet's signing keys, made offline (no fleetd needed). The root side
// (root keys and root metadata) stays in --root-dir; fleetd reads --dir.
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli.h"
#include "tinyfleet/update/pkcs11_signer.h"
#include "tinyfleet/update/root_keys.h"
#include "tinyfleet/update/sodium_crypto.h"
#include "tinyfleet/update/update_keys.h"

namespace tinyfleet::fleetctl {

namespace {
uint64_t now_unix() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}
std::string hex(const std::string& raw) { return update::to_hex_string(raw); }
// A 32-byte key given as 64 hex digits, or exits naming the option.
std::string key_option(const Args& a, const std::string& name) {
  const std::string text = a.get(name);
  std::string raw(32, '\0');
  size_t len = 0;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(raw.data()), raw.size(), text.data(),
                     text.size(), nullptr, &len, nullptr) != 0 ||
      len != 32 || text.size() != 64) {
    usage_error("--" + name + " takes a public key as 64 hex digits");
  }
  return raw;
}
update::Pkcs11Config token_option(const Args& a) {
  update::Pkcs11Config c{a.get("module"), a.get("token"), "", a.get("key-label", "targets")};
  if (c.module.empty() || c.token_label.empty()) usage_error("needs --module and --token");
  if (a.has("pin-file")) {
    std::ifstream in(a.get("pin-file"));
    if (!in) usage_error("cannot read --pin-file " + a.get("pin-file"));
    std::getline(in, c.pin);
  }
  return c;
}

int print_targets(const Args& a, const std::string& verb, const std::string& dir,
                  const std::string& root_dir, const update::TargetsKey& key) {
  auto root = update::load_root_public_key(root_dir);
  if (a.has("json")) {
    print_json({{"dir", dir},
                {"root_dir", root_dir},
                {"targets_public_key", hex(key.public_key)},
                {"targets_expires_at", key.expires_at},
                {"root_public_key", root ? hex(*root) : ""}});
    return kOk;
  }
  std::printf("%s targets key %s in %s, certified by the root key until %llu (unix)\n",
              verb == "init"      ? "created"
              : verb == "certify" ? "certified"
                                  : "rotated",
              hex(key.public_key).substr(0, 16).c_str(), dir.c_str(),
              static_cast<unsigned long long>(key.expires_at));
  if (verb == "init") {
    std::printf("devices pin %s/root.pub; give fleetd keys.dir=%s; keep %s/root.key offline\n",
                dir.c_str(), dir.c_str(), root_dir.c_str());
  }
  return kOk;
}

int print_root(const Args& a, const std::string& verb, const update::RootMetadata& m) {
  if (a.has("json")) {
    nlohmann::json keys = nlohmann::json::array(), targets = nlohmann::json::array();
    for (const auto& k : m.keys) keys.push_back(hex(k));
    for (const auto& k : m.targets_keys) targets.push_back(hex(k));
    print_json({{"root_version", m.version},
                {"threshold", m.threshold},
                {"root_keys", keys},
                {"targets_keys", targets},
                {"max_release_step", m.max_release_step}});
    return kOk;
  }
  std::printf(
      "keys %s: root metadata version %llu (%zu root keys, %u needed; %zu targets keys; "
      "release step <= %llu); restart fleetd so its offers carry it\n",
      verb.c_str(), static_cast<unsigned long long>(m.version), m.keys.size(),
      unsigned{m.threshold}, m.targets_keys.size(),
      static_cast<unsigned long long>(m.max_release_step));
  return kOk;
}

// The token's side: needs neither folder.
int pkcs11_generate(const Args& a) {
  auto pk = update::pkcs11_generate_ed25519(token_option(a));
  if (!pk) {
    std::fprintf(stderr, "fleetctl: keys pkcs11-generate: %s\n", pk.error().message.c_str());
    return kRejected;
  }
  if (a.has("json")) {
    print_json({{"public_key", hex(*pk)}});
  } else {
    std::printf("%s\n", hex(*pk).c_str());
  }
  return kOk;
}
}  // namespace

// Offline: the root key never leaves the operator's machine; fleetd gets targets.*.
int cmd_keys(const Args& a) {
  const std::string verb = a.positional.size() > 1 ? a.positional[1] : "";
  if (verb == "pkcs11-generate") return pkcs11_generate(a);
  const std::string dir = a.get("dir"), root_dir = a.get("root-dir");
  if (dir.empty()) usage_error("keys " + verb + " needs --dir DIR");
  if (root_dir.empty())
    usage_error("keys " + verb + " needs --root-dir DIR (the offline root key)");
  // One folder however it is spelled ("keys", "./keys/", "keys/."), existing yet or not.
  const auto folder = [](const std::string& d) {
    std::error_code ec;
    auto p = std::filesystem::weakly_canonical(std::filesystem::absolute(d), ec).lexically_normal();
    return p.has_filename() ? p : p.parent_path();
  };
  const bool same = folder(dir) == folder(root_dir);
  if (same || std::filesystem::exists(std::filesystem::path(dir) / "root.key")) {
    std::fprintf(stderr,
                 "fleetctl: keys %s: the root key must not be in %s, the folder fleetd reads: give "
                 "--root-dir another folder (and keep it offline)\n",
                 verb.c_str(), dir.c_str());
    return kRejected;
  }
  const auto days = static_cast<uint32_t>(a.number("days", 90));
  if (sodium_init() < 0) return kFailed;
  const auto fail = [&](const storage::Error& e) {
    std::fprintf(stderr, "fleetctl: keys %s: %s\n", verb.c_str(), e.message.c_str());
    return kRejected;
  };
  if (verb == "init" || verb == "rotate" || verb == "certify") {
    storage::Expected<update::TargetsKey> key =
        verb == "init"     ? update::init_keys(root_dir, dir, now_unix(), days)
        : verb == "rotate" ? update::rotate_targets_key(root_dir, dir, now_unix(), days)
                           : update::certify_targets_key(root_dir, dir, key_option(a, "public-key"),
                                                         now_unix(), days);
    if (!key) return fail(key.error());
    return print_targets(a, verb, dir, root_dir, *key);
  }
  storage::Expected<update::RootMetadata> meta = storage::Error{storage::ErrorCode::kInternal, ""};
  if (verb == "rotate-root") {
    const double n = a.number("root-keys", 1), k = a.number("threshold", 1);
    if (n < 1 || n > 8 || k < 1 || k > n) {
      usage_error("--root-keys takes 1..8 and --threshold 1..--root-keys");
    }
    meta = update::rotate_root(root_dir, dir, static_cast<uint8_t>(n), static_cast<uint8_t>(k));
  } else if (verb == "revoke") {
    meta = update::revoke_targets_key(root_dir, dir, key_option(a, "targets-key"));
  } else if (verb == "release-step") {
    const double step = a.number("step", 0);
    if (step < 1 || step > 9.0e15) usage_error("--step takes a number of releases >= 1");
    meta = update::set_release_step(root_dir, dir, static_cast<uint64_t>(step));
  } else {
    usage_error(
        "keys takes init, rotate, certify, rotate-root, revoke, release-step or "
        "pkcs11-generate");
  }
  if (!meta) return fail(meta.error());
  return print_root(a, verb, *meta);
}

}  // namespace tinyfleet::fleetctl
