#include "tinyfleet/server/device_registry_service.h"

#include <algorithm>
#include <iterator>

#include <sodium.h>

#include "convert.h"
#include "names.h"
#include "tinyfleet/optimizer_service/device_class.h"
#include "tinyfleet/server/grpc_status.h"
#include "tinyfleet/server/log.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/update/topics.h"

namespace tinyfleet::server {

namespace {
using storage::Role;

std::string new_device_password() {
  unsigned char raw[18];
  randombytes_buf(raw, sizeof raw);
  char b64[sodium_base64_ENCODED_LEN(18, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return b64;
}
}  // namespace

grpc::Status DeviceRegistryService::CreateDeviceClass(grpc::ServerContext* ctx,
                                                      const v1::DeviceClass* req,
                                                      v1::DeviceClass* out) {
  Caller caller;
  if (auto s = auth_.authorize(*ctx, Role::kOperator, "CreateDeviceClass", &caller); !s.ok()) {
    return s;
  }
  if (!names::device_class(req->name())) {
    return invalid_argument("name '" + req->name() + "' is not a device class name");
  }
  // The compiler's parser: what is stored here is what the fit check and the offers read.
  if (auto cls = optimizer_service::parse_device_class(req->name(), req->spec_json()); !cls) {
    return invalid_argument("spec_json: " + cls.error().message);
  }
  auto r = db_.transact([&](pqxx::work& w) {
    auto c = storage::device_classes::upsert(w, {req->name(), req->spec_json()});
    storage::audit_log::append(w, {caller.name, "class.upsert", "class/" + c.name, "{}"});
    return c;
  });
  if (!r) return to_status(r.error());
  out->set_name(r->name);
  out->set_spec_json(r->spec_json);
  return grpc::Status::OK;
}

grpc::Status DeviceRegistryService::ListDeviceClasses(grpc::ServerContext* ctx,
                                                      const v1::ListDeviceClassesRequest*,
                                                      v1::ListDeviceClassesResponse* out) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "ListDeviceClasses", nullptr); !s.ok()) {
    return s;
  }
  auto r = db_.transact([](pqxx::work& w) { return storage::device_classes::list(w); });
  if (!r) return to_status(r.error());
  for (const auto& c : *r) {
    auto* m = out->add_classes();
    m->set_name(c.name);
    m->set_spec_json(c.spec_json);
  }
  return grpc::Status::OK;
}

grpc::Status DeviceRegistryService::ProvisionDevice(grpc::ServerContext* ctx,
                                                    const v1::ProvisionDeviceRequest* req,
                                                    v1::ProvisionDeviceResponse* out) {
  Caller caller;
  if (auto s = auth_.authorize(*ctx, Role::kOperator, "ProvisionDevice", &caller); !s.ok()) {
    return s;
  }
  if (!names::device(req->id())) {
    return invalid_argument(
        "id '" + req->id() +
        "' is not a device id: 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit");
  }
  const std::string fleet = req->fleet().empty() ? "default" : req->fleet();
  if (!names::device(fleet)) return invalid_argument("fleet '" + fleet + "' is not a fleet name");
  if (settings_.root_public_key.size() != crypto_sign_PUBLICKEYBYTES) {
    return failed_precondition(
        "fleetd has no root public key to give devices (set keys.root_public_key_file)");
  }
  if (!broker_.configured()) {
    return failed_precondition(
        "fleetd has no broker password file configured (mqtt.passwd_file, or "
        "nats.accounts_file with broker.kind nats)");
  }
  if (broker_.reserved(req->id())) {
    return failed_precondition("id '" + req->id() +
                               "' is a reserved broker account (not a device); it is not "
                               "provisioned");
  }
  const std::string password = new_device_password();
  // The device row and the broker account appear together: a broker failure rolls
  // the row back.
  auto r = db_.transact([&](pqxx::work& w) {
    storage::NewDevice d;
    d.id = req->id();
    d.fleet = fleet;
    d.device_class = req->device_class();
    d.tags.assign(req->tags().begin(), req->tags().end());
    d.credential_hash = storage::sha256_hex(password);
    auto rec = storage::devices::create(w, d);
    storage::audit_log::append(w, {caller.name, "device.provision", "device/" + rec.id, "{}"});
    auto added = broker_.add(rec.id, password, rec.fleet);  // NATS: the fleet's subjects
    if (!added) storage::fail(added.error().code, added.error().message);
    return rec;
  });
  if (!r) return to_status(r.error());
  fill_credentials(*r, password, out);
  log::info("device.provisioned",
            {{"device", r->id}, {"class", r->device_class}, {"by", caller.name}});
  return grpc::Status::OK;
}

grpc::Status DeviceRegistryService::ListDevices(grpc::ServerContext* ctx,
                                                const v1::ListDevicesRequest* req,
                                                v1::ListDevicesResponse* out) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "ListDevices", nullptr); !s.ok()) return s;
  storage::DeviceFilter f;
  if (!req->device_class().empty()) f.device_class = req->device_class();
  if (!req->tag().empty()) f.tag = req->tag();
  if (!req->status().empty()) {
    static const char* kStatuses[] = {"provisioned", "online",        "offline", "updating",
                                      "failed",      "deprovisioned", "no_model"};
    if (std::find(std::begin(kStatuses), std::end(kStatuses), req->status()) ==
        std::end(kStatuses)) {
      return invalid_argument("status '" + req->status() +
                              "' is not one of provisioned, online, offline, updating, failed, "
                              "deprovisioned, no_model");
    }
    f.status = req->status();
  }
  if (!req->device_class().empty() && !names::device_class(req->device_class())) {
    return invalid_argument("device_class '" + req->device_class() + "' is not a class name");
  }
  if (!req->page_token().empty() && !names::device(req->page_token())) {
    return invalid_argument("page_token '" + req->page_token() + "' is malformed");
  }
  f.after_id = req->page_token();
  const int page =
      req->page_size() == 0 ? 100 : static_cast<int>(std::min(req->page_size(), 1000u));
  f.limit = page + 1;
  auto r = db_.transact([&](pqxx::work& w) { return storage::devices::list(w, f); });
  if (!r) return to_status(r.error());
  for (size_t i = 0; i < r->size() && i < static_cast<size_t>(page); ++i) {
    convert::device((*r)[i], out->add_devices());
  }
  if (r->size() > static_cast<size_t>(page)) out->set_next_page_token((*r)[page - 1].id);
  return grpc::Status::OK;
}

grpc::Status DeviceRegistryService::GetDevice(grpc::ServerContext* ctx,
                                              const v1::GetDeviceRequest* req, v1::Device* out) {
  if (auto s = auth_.authorize(*ctx, Role::kViewer, "GetDevice", nullptr); !s.ok()) return s;
  auto r = db_.transact([&](pqxx::work& w) { return storage::devices::get(w, req->id()); });
  if (!r) return to_status(r.error());
  convert::device(*r, out);
  return grpc::Status::OK;
}

grpc::Status DeviceRegistryService::DeprovisionDevice(grpc::ServerContext* ctx,
                                                      const v1::DeprovisionDeviceRequest* req,
                                                      v1::Device* out) {
  Caller caller;
  if (auto s = auth_.authorize(*ctx, Role::kOperator, "DeprovisionDevice", &caller); !s.ok()) {
    return s;
  }
  if (!names::device(req->id()))
    return invalid_argument("id '" + req->id() + "' is not a device id");
  // The row is marked first, then the broker account removed, in one transaction: a
  // broker failure leaves the device as it was.
  auto r = db_.transact([&](pqxx::work& w) {
    storage::devices::deprovision(w, req->id());
    storage::audit_log::append(w, {caller.name, "device.deprovision", "device/" + req->id(), "{}"});
    auto removed = broker_.remove(req->id());
    if (!removed) storage::fail(removed.error().code, removed.error().message);
    return storage::devices::get(w, req->id());
  });
  if (!r) return to_status(r.error());
  convert::device(*r, out);
  log::info("device.deprovisioned", {{"device", r->id}, {"by", caller.name}});
  return grpc::Status::OK;
}

grpc::Status DeviceRegistryService::RotateDeviceCredentials(
    grpc::ServerContext* ctx, const v1::RotateDeviceCredentialsRequest* req,
    v1::ProvisionDeviceResponse* out) {
  Caller caller;
  if (auto s = auth_.authorize(*ctx, Role::kOperator, "RotateDeviceCredentials", &caller);
      !s.ok()) {
    return s;
  }
  if (!names::device(req->id()))
    return invalid_argument("id '" + req->id() + "' is not a device id");
  if (settings_.root_public_key.size() != crypto_sign_PUBLICKEYBYTES) {
    return failed_precondition(
        "fleetd has no root public key to give devices (set keys.root_public_key_file)");
  }
  const std::string password = new_device_password();
  auto r = db_.transact([&](pqxx::work& w) {
    storage::devices::set_credential_hash(w, req->id(), storage::sha256_hex(password));
    storage::audit_log::append(
        w, {caller.name, "device.rotate_credentials", "device/" + req->id(), "{}"});
    auto device = storage::devices::get(w, req->id());
    auto replaced = broker_.replace(req->id(), password, device.fleet);
    if (!replaced) storage::fail(replaced.error().code, replaced.error().message);
    return device;
  });
  if (!r) return to_status(r.error());
  fill_credentials(*r, password, out);
  log::info("device.credentials_rotated", {{"device", r->id}, {"by", caller.name}});
  return grpc::Status::OK;
}

void DeviceRegistryService::fill_credentials(const storage::DeviceRecord& d,
                                             const std::string& password,
                                             v1::ProvisionDeviceResponse* out) const {
  convert::device(d, out->mutable_device());
  auto* mqtt = out->mutable_mqtt();
  mqtt->set_host(settings_.mqtt_host);
  mqtt->set_port(static_cast<uint32_t>(settings_.mqtt_port));
  mqtt->set_username(d.id);
  mqtt->set_password(password);
  char prefix[update::kMaxTopicBytes];
  update::device_topic_prefix(d.fleet.c_str(), d.id.c_str(), prefix, sizeof prefix);
  mqtt->set_topic_prefix(prefix);
  out->set_root_public_key(settings_.root_public_key);
}

}  // namespace tinyfleet::server
