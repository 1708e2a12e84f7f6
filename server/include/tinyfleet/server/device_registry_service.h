#pragma once

#include <string>

#include "tinyfleet/server/authenticator.h"
#include "tinyfleet/server/broker_accounts.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/storage/records.h"
#include "tinyfleet/v1/device_registry.grpc.pb.h"

namespace tinyfleet::server {

struct ProvisioningSettings {
  std::string mqtt_host;
  int mqtt_port = 0;
  std::string root_public_key;  // 32 bytes; empty: provisioning is refused, naming the setting
};

// tinyfleet.v1.DeviceRegistry.
class DeviceRegistryService final : public v1::DeviceRegistry::Service {
 public:
  DeviceRegistryService(storage::Database& db, const Authenticator& auth, BrokerAccounts& broker,
                        ProvisioningSettings settings)
      : db_(db), auth_(auth), broker_(broker), settings_(std::move(settings)) {}

  grpc::Status CreateDeviceClass(grpc::ServerContext* ctx, const v1::DeviceClass* req,
                                 v1::DeviceClass* out) override;
  grpc::Status ListDeviceClasses(grpc::ServerContext* ctx, const v1::ListDeviceClassesRequest* req,
                                 v1::ListDeviceClassesResponse* out) override;
  grpc::Status ProvisionDevice(grpc::ServerContext* ctx, const v1::ProvisionDeviceRequest* req,
                               v1::ProvisionDeviceResponse* out) override;
  grpc::Status ListDevices(grpc::ServerContext* ctx, const v1::ListDevicesRequest* req,
                           v1::ListDevicesResponse* out) override;
  grpc::Status GetDevice(grpc::ServerContext* ctx, const v1::GetDeviceRequest* req,
                         v1::Device* out) override;
  grpc::Status DeprovisionDevice(grpc::ServerContext* ctx, const v1::DeprovisionDeviceRequest* req,
                                 v1::Device* out) override;
  grpc::Status RotateDeviceCredentials(grpc::ServerContext* ctx,
                                       const v1::RotateDeviceCredentialsRequest* req,
                                       v1::ProvisionDeviceResponse* out) override;

 private:
  void fill_credentials(const storage::DeviceRecord& d, const std::string& password,
                        v1::ProvisionDeviceResponse* out) const;
  storage::Database& db_;
  const Authenticator& auth_;
  BrokerAccounts& broker_;
  ProvisioningSettings settings_;
};

}  // namespace tinyfleet::server
