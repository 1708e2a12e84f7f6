#include "tinyfleet/update/root_keys.h"

#include <sodium.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "key_files.h"
#include "tinyfleet/update/offer.h"
#include "tinyfleet/update/update_keys.h"

namespace tinyfleet::update {

namespace {
namespace fs = std::filesystem;
using storage::Error;
using storage::ErrorCode;

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

fs::path meta_path(const fs::path& dir, uint64_t version) {
  return dir / ("root-v" + std::to_string(version) + ".meta");
}

// root.key, root-2.key, ... root-8.key: the first is the one root.pub names.
fs::path key_path(const fs::path& dir, size_t index) {
  return index == 0 ? dir / "root.key" : dir / ("root-" + std::to_string(index + 1) + ".key");
}

// The newest version in `dir`, or nullopt-like kNotFound when there is none.
storage::Expected<RootMetadata> latest_root(const fs::path& dir) {
  uint64_t v = 0;
  while (fs::exists(meta_path(dir, v + 1))) ++v;
  if (v == 0) return Error{ErrorCode::kNotFound, "no root metadata in " + dir.string()};
  auto doc = key_files::read_all(meta_path(dir, v), kMaxRootBytes);
  if (!doc) return doc.error();
  return parse_root_document(*doc);
}

struct RootSigners {
  std::vector<std::unique_ptr<SodiumSigner>> owned;
  std::vector<Signer*> all() const {
    std::vector<Signer*> out;
    for (const auto& s : owned) out.push_back(s.get());
    return out;
  }
};

// The root secret keys present in `dir` that `meta` lists; a threshold of them or an error.
storage::Expected<RootSigners> current_signers(const fs::path& dir, const RootMetadata& meta) {
  RootSigners s;
  for (size_t i = 0; i < kMaxRootKeys; ++i) {
    if (!fs::exists(key_path(dir, i))) continue;
    auto sk = key_files::read_exact(key_path(dir, i), crypto_sign_SECRETKEYBYTES);
    if (!sk) return sk.error();
    auto signer = std::make_unique<SodiumSigner>(*sk);
    if (std::find(meta.keys.begin(), meta.keys.end(), signer->public_key()) != meta.keys.end()) {
      s.owned.push_back(std::move(signer));
    }
  }
  if (s.owned.size() < meta.threshold) {
    return Error{ErrorCode::kFailedPrecondition,
                 dir.string() + " holds " + std::to_string(s.owned.size()) + " of root version " +
                     std::to_string(meta.version) + "'s keys; its threshold is " +
                     std::to_string(meta.threshold)};
  }
  return s;
}

storage::Expected<storage::Done> write_both(const fs::path& root_dir, const fs::path& targets_dir,
                                            const fs::path& name, const std::string& bytes) {
  if (auto w = key_files::write_file(root_dir / name, bytes, false); !w) return w;
  return key_files::write_file(targets_dir / name, bytes, false);
}

// Version N+1 = `next`, signed by the current keys and `extra` (a new root's own keys).
storage::Expected<RootMetadata> publish(const fs::path& root_dir, const fs::path& targets_dir,
                                        const RootMetadata& current, RootMetadata next,
                                        const std::vector<Signer*>& extra) {
  auto signers = current_signers(root_dir, current);
  if (!signers) return signers.error();
  next.version = current.version + 1;
  auto all = signers->all();
  for (auto* s : extra) {
    if (std::find(next.keys.begin(), next.keys.end(), s->public_key()) != next.keys.end() &&
        std::find_if(all.begin(), all.end(),
                     [&](Signer* o) { return o->public_key() == s->public_key(); }) == all.end()) {
      all.push_back(s);
    }
  }
  auto doc = sign_root(next, all);
  if (!doc) return doc.error();
  RootView view;
  if (parse_root(reinterpret_cast<const uint8_t*>(doc->data()), doc->size(), &view) !=
      RootStatus::kOk) {
    return Error{ErrorCode::kInternal, "the signed root metadata does not parse"};
  }
  if (auto w = write_both(root_dir, targets_dir, meta_path("", next.version), *doc); !w) {
    return w.error();
  }
  return next;
}

storage::Expected<RootMetadata> latest_or_error(const std::string& root_dir) {
  auto current = latest_root(root_dir);
  if (!current) {
    return Error{ErrorCode::kFailedPrecondition,
                 current.error().message + ": run 'fleetctl keys rotate' once to create it"};
  }
  return current;
}
}  // namespace

storage::Expected<std::string> sign_root(const RootMetadata& meta,
                                         const std::vector<Signer*>& signers) {
  if (meta.keys.empty() || meta.keys.size() > kMaxRootKeys ||
      meta.targets_keys.size() > kMaxTargetsKeys || meta.threshold == 0 ||
      meta.threshold > meta.keys.size() || signers.empty() || signers.size() > kMaxRootSignatures ||
      meta.max_release_step == 0 || meta.version == 0) {
    return Error{ErrorCode::kInvalidArgument,
                 "root metadata needs 1-8 root keys, a threshold among them, at most 8 targets "
                 "keys, 1-16 signatures and a release step above 0"};
  }
  std::string doc = "TFRM";
  doc.push_back(static_cast<char>(kRootFormat));
  put_u64(doc, meta.version);
  put_u64(doc, meta.max_release_step);
  doc.push_back(static_cast<char>(meta.threshold));
  doc.push_back(static_cast<char>(meta.keys.size()));
  for (const auto& k : meta.keys) doc += k;
  doc.push_back(static_cast<char>(meta.targets_keys.size()));
  for (const auto& k : meta.targets_keys) doc += k;
  const std::string body = doc;
  doc.push_back(static_cast<char>(signers.size()));
  for (auto* s : signers) {
    auto sig = s->sign(body);
    if (!sig) return sig.error();
    doc += s->public_key() + *sig;
  }
  return doc;
}

storage::Expected<RootMetadata> parse_root_document(const std::string& document) {
  RootView v;
  const auto* data = reinterpret_cast<const uint8_t*>(document.data());
  if (auto s = parse_root(data, document.size(), &v);
      s != RootStatus::kOk || v.size != document.size()) {
    return Error{ErrorCode::kInvalidArgument, "root metadata malformed"};
  }
  RootMetadata m;
  m.version = v.version;
  m.max_release_step = v.max_release_step;
  m.threshold = v.threshold;
  for (size_t i = 0; i < v.key_count; ++i) {
    m.keys.emplace_back(reinterpret_cast<const char*>(v.keys + i * 32), 32);
  }
  for (size_t i = 0; i < v.targets_count; ++i) {
    m.targets_keys.emplace_back(reinterpret_cast<const char*>(v.targets + i * 32), 32);
  }
  return m;
}

storage::Expected<std::string> load_root_chain(const std::string& dir) {
  std::string chain;
  for (uint64_t v = 1; fs::exists(meta_path(dir, v)); ++v) {
    auto doc = key_files::read_all(meta_path(dir, v), kMaxRootBytes);
    if (!doc) return doc.error();
    if (auto m = parse_root_document(*doc); !m || m->version != v) {
      return Error{
          ErrorCode::kInvalidArgument,
          meta_path(dir, v).string() + " is not root metadata version " + std::to_string(v)};
    }
    chain += *doc;
  }
  return chain;
}

storage::Expected<RootMetadata> list_targets_key(const std::string& root_dir,
                                                 const std::string& targets_dir,
                                                 const std::string& public_key) {
  auto current = latest_root(root_dir);
  if (!current) {  // the first version: the root key alone, threshold 1
    auto pk = key_files::read_exact(fs::path(root_dir) / "root.pub", crypto_sign_PUBLICKEYBYTES);
    if (!pk) return pk.error();
    RootMetadata genesis;
    genesis.version = 0;  // publish() makes it 1
    genesis.keys = {*pk};
    RootMetadata first = genesis;
    first.targets_keys = {public_key};
    return publish(root_dir, targets_dir, genesis, first, {});
  }
  RootMetadata next = *current;
  next.targets_keys.clear();
  if (!current->targets_keys.empty() && current->targets_keys.back() != public_key) {
    next.targets_keys.push_back(current->targets_keys.back());
  }
  next.targets_keys.push_back(public_key);
  return publish(root_dir, targets_dir, *current, next, {});
}

storage::Expected<RootMetadata> revoke_targets_key(const std::string& root_dir,
                                                   const std::string& targets_dir,
                                                   const std::string& public_key) {
  auto current = latest_or_error(root_dir);
  if (!current) return current;
  RootMetadata next = *current;
  auto it = std::find(next.targets_keys.begin(), next.targets_keys.end(), public_key);
  if (it == next.targets_keys.end()) {
    return Error{ErrorCode::kNotFound, "root version " + std::to_string(current->version) +
                                           " does not list that targets key"};
  }
  next.targets_keys.erase(it);
  return publish(root_dir, targets_dir, *current, next, {});
}

storage::Expected<RootMetadata> set_release_step(const std::string& root_dir,
                                                 const std::string& targets_dir, uint64_t step) {
  auto current = latest_or_error(root_dir);
  if (!current) return current;
  RootMetadata next = *current;
  next.max_release_step = step;
  return publish(root_dir, targets_dir, *current, next, {});
}

storage::Expected<RootMetadata> rotate_root(const std::string& root_dir,
                                            const std::string& targets_dir, uint8_t key_count,
                                            uint8_t threshold) {
  if (sodium_init() < 0) return Error{ErrorCode::kInternal, "libsodium failed to initialize"};
  if (key_count == 0 || key_count > kMaxRootKeys || threshold == 0 || threshold > key_count) {
    return Error{ErrorCode::kInvalidArgument, "a root needs 1-8 keys and a threshold among them"};
  }
  auto current = latest_or_error(root_dir);
  if (!current) return current;
  std::vector<std::unique_ptr<SodiumSigner>> fresh;
  std::vector<std::string> secrets;
  RootMetadata next = *current;
  next.keys.clear();
  next.threshold = threshold;
  for (size_t i = 0; i < key_count; ++i) {
    std::string pk(crypto_sign_PUBLICKEYBYTES, '\0'), sk(crypto_sign_SECRETKEYBYTES, '\0');
    crypto_sign_keypair(reinterpret_cast<unsigned char*>(pk.data()),
                        reinterpret_cast<unsigned char*>(sk.data()));
    fresh.push_back(std::make_unique<SodiumSigner>(sk));
    secrets.push_back(sk);
    next.keys.push_back(pk);
  }
  std::vector<Signer*> extra;
  for (const auto& s : fresh) extra.push_back(s.get());
  auto published = publish(root_dir, targets_dir, *current, next, extra);
  if (!published) return published;
  // The old keys retire; the new ones take their names.
  const fs::path dir(root_dir), retired = dir / "retired";
  std::error_code ec;
  fs::create_directories(retired, ec);
  for (size_t i = 0; i < kMaxRootKeys; ++i) {
    if (!fs::exists(key_path(dir, i))) continue;
    fs::rename(key_path(dir, i),
               retired / ("v" + std::to_string(current->version) + "-" +
                          key_path(dir, i).filename().string()),
               ec);
    if (ec) return Error{ErrorCode::kUnavailable, "cannot retire " + key_path(dir, i).string()};
  }
  for (size_t i = 0; i < secrets.size(); ++i) {
    if (auto w = key_files::write_file(key_path(dir, i), secrets[i], true); !w) return w.error();
  }
  if (auto w = write_both(dir, targets_dir, "root.pub", next.keys[0]); !w) return w.error();
  // fleetd's targets key, certified again by the new first root key.
  if (auto c = recertify_targets_key(root_dir, targets_dir); !c) return c.error();
  return published;
}

}  // namespace tinyfleet::update
