#include "tinyfleet/update/pkcs11_signer.h"

#include <dlfcn.h>
#include <p11-kit/pkcs11.h>

#include <cstring>
#include <vector>

namespace tinyfleet::update {

namespace {
using storage::Error;
using storage::ErrorCode;

// DER of the Ed25519 curve OID 1.3.101.112 (CKA_EC_PARAMS).
constexpr unsigned char kEd25519Params[] = {0x06, 0x03, 0x2b, 0x65, 0x70};

Error fail(const std::string& what, CK_RV rv) {
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(rv));
  return Error{ErrorCode::kFailedPrecondition, "PKCS#11 " + what + " failed (CKR " + hex + ")"};
}

// A CK_UTF8CHAR[32] label, blank-padded as tokens report it.
bool label_is(const CK_UTF8CHAR (&field)[32], const std::string& label) {
  std::string s(reinterpret_cast<const char*>(field), 32);
  s.erase(s.find_last_not_of(' ') + 1);
  return s == label;
}
}  // namespace

struct Pkcs11Signer::Session {
  void* library = nullptr;
  CK_FUNCTION_LIST_PTR f = nullptr;
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE private_key = CK_INVALID_HANDLE;

  ~Session() {
    // The module stays loaded and initialized: another signer in the process may use it.
    if (f && session != CK_INVALID_HANDLE) f->C_CloseSession(session);
  }

  storage::Expected<storage::Done> open(const Pkcs11Config& c) {
    library = dlopen(c.module.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library) {
      return Error{ErrorCode::kFailedPrecondition,
                   "cannot load the PKCS#11 module " + c.module + ": " + dlerror()};
    }
    auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(library, "C_GetFunctionList"));
    if (!get) return Error{ErrorCode::kFailedPrecondition, c.module + " is not a PKCS#11 module"};
    if (CK_RV rv = get(&f); rv != CKR_OK) return fail("C_GetFunctionList", rv);
    if (CK_RV rv = f->C_Initialize(nullptr);
        rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      return fail("C_Initialize", rv);
    }
    CK_ULONG n = 0;
    if (CK_RV rv = f->C_GetSlotList(CK_TRUE, nullptr, &n); rv != CKR_OK) {
      return fail("C_GetSlotList", rv);
    }
    std::vector<CK_SLOT_ID> slots(n);
    if (CK_RV rv = f->C_GetSlotList(CK_TRUE, slots.data(), &n); rv != CKR_OK) {
      return fail("C_GetSlotList", rv);
    }
    for (CK_ULONG i = 0; i < n && session == CK_INVALID_HANDLE; ++i) {
      CK_TOKEN_INFO info;
      if (f->C_GetTokenInfo(slots[i], &info) != CKR_OK || !label_is(info.label, c.token_label)) {
        continue;
      }
      if (CK_RV rv = f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                                      nullptr, &session);
          rv != CKR_OK) {
        return fail("C_OpenSession", rv);
      }
    }
    if (session == CK_INVALID_HANDLE) {
      return Error{ErrorCode::kNotFound,
                   "no PKCS#11 token labelled '" + c.token_label + "' in " + c.module};
    }
    std::string pin = c.pin;
    if (CK_RV rv = f->C_Login(session, CKU_USER, reinterpret_cast<CK_UTF8CHAR_PTR>(pin.data()),
                              pin.size());
        rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
      return fail("C_Login to token '" + c.token_label + "'", rv);
    }
    return storage::Done{};
  }

  // The one object of `cls` labelled `label`.
  storage::Expected<CK_OBJECT_HANDLE> find(CK_OBJECT_CLASS cls, const std::string& label) {
    std::string l = label;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, l.data(), l.size()}};
    if (CK_RV rv = f->C_FindObjectsInit(session, t, 2); rv != CKR_OK) {
      return fail("C_FindObjectsInit", rv);
    }
    CK_OBJECT_HANDLE found[2];
    CK_ULONG count = 0;
    const CK_RV rv = f->C_FindObjects(session, found, 2, &count);
    f->C_FindObjectsFinal(session);
    if (rv != CKR_OK) return fail("C_FindObjects", rv);
    if (count != 1) {
      return Error{ErrorCode::kNotFound, std::to_string(count) + " " +
                                             (cls == CKO_PRIVATE_KEY ? "private" : "public") +
                                             " keys labelled '" + label + "' (need exactly 1)"};
    }
    return found[0];
  }

  // CKA_EC_POINT of an Ed25519 public key: the 32 bytes, or them in a DER OCTET STRING.
  storage::Expected<std::string> public_key(CK_OBJECT_HANDLE key) {
    unsigned char point[64];
    CK_ATTRIBUTE a = {CKA_EC_POINT, point, sizeof point};
    if (CK_RV rv = f->C_GetAttributeValue(session, key, &a, 1); rv != CKR_OK) {
      return fail("C_GetAttributeValue(CKA_EC_POINT)", rv);
    }
    if (a.ulValueLen == 34 && point[0] == 0x04 && point[1] == 32) {
      return std::string(reinterpret_cast<char*>(point + 2), 32);
    }
    if (a.ulValueLen == 32) return std::string(reinterpret_cast<char*>(point), 32);
    return Error{ErrorCode::kFailedPrecondition, "the token's public key is not Ed25519"};
  }
};

Pkcs11Signer::Pkcs11Signer(std::unique_ptr<Session> session) : session_(std::move(session)) {}
Pkcs11Signer::~Pkcs11Signer() = default;

storage::Expected<std::unique_ptr<Pkcs11Signer>> Pkcs11Signer::open(const Pkcs11Config& c) {
  auto s = std::make_unique<Session>();
  if (auto o = s->open(c); !o) return o.error();
  auto priv = s->find(CKO_PRIVATE_KEY, c.key_label);
  if (!priv) return priv.error();
  auto pub = s->find(CKO_PUBLIC_KEY, c.key_label);
  if (!pub) return pub.error();
  auto pk = s->public_key(*pub);
  if (!pk) return pk.error();
  s->private_key = *priv;
  std::unique_ptr<Pkcs11Signer> signer(new Pkcs11Signer(std::move(s)));
  signer->public_key_ = *pk;
  return signer;
}

storage::Expected<std::string> Pkcs11Signer::sign(const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  auto* f = session_->f;
  CK_MECHANISM m = {CKM_EDDSA, nullptr, 0};
  if (CK_RV rv = f->C_SignInit(session_->session, &m, session_->private_key); rv != CKR_OK) {
    return fail("C_SignInit(CKM_EDDSA)", rv);
  }
  std::string data = message;
  std::string signature(64, '\0');
  CK_ULONG size = signature.size();
  if (CK_RV rv = f->C_Sign(session_->session, reinterpret_cast<CK_BYTE_PTR>(data.data()),
                           data.size(), reinterpret_cast<CK_BYTE_PTR>(signature.data()), &size);
      rv != CKR_OK) {
    return fail("C_Sign", rv);
  }
  if (size != 64) return Error{ErrorCode::kInternal, "the token's signature is not 64 bytes"};
  return signature;
}

storage::Expected<std::string> pkcs11_generate_ed25519(const Pkcs11Config& c) {
  Pkcs11Signer::Session s;
  if (auto o = s.open(c); !o) return o.error();
  CK_MECHANISM m = {CKM_EC_EDWARDS_KEY_PAIR_GEN, nullptr, 0};
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  std::string label = c.key_label;
  std::vector<unsigned char> params(std::begin(kEd25519Params), std::end(kEd25519Params));
  CK_ATTRIBUTE pub[] = {{CKA_EC_PARAMS, params.data(), params.size()},
                        {CKA_LABEL, label.data(), label.size()},
                        {CKA_TOKEN, &yes, sizeof yes},
                        {CKA_VERIFY, &yes, sizeof yes}};
  CK_ATTRIBUTE priv[] = {{CKA_LABEL, label.data(), label.size()}, {CKA_TOKEN, &yes, sizeof yes},
                         {CKA_PRIVATE, &yes, sizeof yes},         {CKA_SENSITIVE, &yes, sizeof yes},
                         {CKA_EXTRACTABLE, &no, sizeof no},       {CKA_SIGN, &yes, sizeof yes}};
  CK_OBJECT_HANDLE pub_key, priv_key;
  if (CK_RV rv = s.f->C_GenerateKeyPair(s.session, &m, pub, 4, priv, 6, &pub_key, &priv_key);
      rv != CKR_OK) {
    return fail("C_GenerateKeyPair(CKM_EC_EDWARDS_KEY_PAIR_GEN)", rv);
  }
  return s.public_key(pub_key);
}

}  // namespace tinyfleet::update
